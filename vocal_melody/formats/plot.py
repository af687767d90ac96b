"""Pictures of melodies: log-frequency spectrogram with f0 tracks overlaid (matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vocal_melody.fileio import atomic_path

TRACK_COLOURS = ("#00e5ff", "#ff3d00", "#76ff03", "#ffea00")


def plot_melody(spectrogram_db: np.ndarray, frame_seconds: float, sample_rate: int,
                tracks: dict[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike,
                title: str = "", fmin: float = 60.0, fmax: float | None = None,
                width: float = 10.0, height: float = 4.0, dpi: int = 80) -> Path:
    """Write a PNG: spectrogram (frames x bins, dB) on a log-frequency axis with f0 tracks on top.

    ``tracks`` maps a legend name to ``(times, f0)``; unvoiced frames (0 Hz)
    are not drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_frames, n_bins = spectrogram_db.shape
    freqs = np.linspace(0, sample_rate / 2, n_bins)
    fmax = fmax or sample_rate / 2
    keep = (freqs >= fmin * 0.9) & (freqs <= fmax)
    times = np.arange(n_frames) * frame_seconds
    figure, axis = plt.subplots(figsize=(width, height), dpi=dpi)
    axis.pcolormesh(times, freqs[keep], spectrogram_db[:, keep].T, shading="auto", cmap="magma")
    for (name, (track_times, f0)), colour in zip(tracks.items(), TRACK_COLOURS):
        shown = np.where(np.asarray(f0) > 0, f0, np.nan)
        axis.plot(track_times, shown, color=colour, linewidth=1.2, label=name)
    axis.set_yscale("log")
    axis.set_ylim(fmin, fmax)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("frequency (Hz)")
    if title:
        axis.set_title(title)
    if tracks:
        axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)
    return path
