"""Training data in memory: cached spectrograms and frame classes, normalisation statistics, and
random 31-frame windows reproducible from ``(seed, epoch, step)`` alone (a resumed run draws the same batches).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from vocal_melody import features
from vocal_melody.lab.corpora.datasets import FeatureCache, LabeledTrack, frame_classes
from vocal_melody.errors import MelodyError
from vocal_melody.labels import N_CLASSES, target_distributions


W = features.WINDOW_FRAMES


@dataclass
class FrameData:
    """Spectrograms and frame classes of tracks (classes None for unlabeled audio); ``soft``: a teacher's
    distribution per frame (n_frames, 442) of each track, for distillation."""

    tracks: list[LabeledTrack]
    specs: list[np.ndarray]
    classes: list[np.ndarray | None]
    soft: list[np.ndarray] | None = None

    @property
    def n_frames(self) -> np.ndarray:
        return np.array([len(s) for s in self.specs])

    @property
    def minutes(self) -> float:
        return float(self.n_frames.sum()) * features.FRAME_SECONDS / 60.0


def load_frame_data(tracks: list[LabeledTrack], cache: FeatureCache, progress: bool = True,
                    desc: str = "features") -> FrameData:
    """Spectrograms from the cache (computed on first use) and class indices per frame."""
    from tqdm import tqdm

    specs, classes = [], []
    for track in tqdm(tracks, desc=desc, unit="track", disable=not progress, file=sys.stderr):
        spec = cache.spectrogram(track.audio)
        specs.append(spec)
        if track.f0 is not None:
            check_label_length(track, len(spec))
        classes.append(None if track.f0 is None else frame_classes(track.f0, len(spec)))
    return FrameData(tracks, specs, classes)


LABEL_LENGTH_TOLERANCE = 0.05
"""A label may differ from its audio by a few frames (rounding, a last partial hop), not by more."""


def check_label_length(track: LabeledTrack, n_frames: int) -> None:
    """A label must cover its audio: one that is much shorter or longer belongs to another file."""
    n_label = len(track.f0)
    if abs(n_label - n_frames) > max(5, LABEL_LENGTH_TOLERANCE * n_frames):
        step = features.FRAME_SECONDS
        raise MelodyError(f"{track.audio}: its label ({track.name}) covers {n_label * step:.2f} s but the audio "
                          f"lasts {n_frames * step:.2f} s; a label must cover its audio on the 10 ms grid")


def normalization_stats(specs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per (window frame, bin) over the non-overlapping windows of all tracks."""
    total = np.zeros((W, features.N_BINS))
    total_sq = np.zeros((W, features.N_BINS))
    count = 0
    for spec in specs:
        windows = features.make_windows(np.asarray(spec, dtype=np.float32)).astype(np.float64)
        total += windows.sum(axis=0)
        total_sq += np.square(windows).sum(axis=0)
        count += len(windows)
    if count == 0:
        raise MelodyError("no training audio to compute normalisation statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def _window(spec: np.ndarray, start: int) -> np.ndarray:
    window = np.asarray(spec[start:start + W], dtype=np.float32)
    return features.pad_to_windows(window, float(window.min()))


def sample_windows(data: FrameData, batch_size: int, rng: np.random.Generator,
                   classes_override: list[np.ndarray] | None = None, with_soft: bool = False) -> tuple:
    """``batch_size`` random windows (tracks chosen in proportion to length): (x dB, class indices), and with
    ``with_soft`` the windows of ``data.soft`` (frames past a track's end: no voice), drawn from the same numbers."""
    lengths = data.n_frames
    chosen = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
    x = np.empty((batch_size, W, features.N_BINS), np.float32)
    y = np.zeros((batch_size, W), np.int64)
    soft = None
    if with_soft:
        soft = np.zeros((batch_size, W, N_CLASSES), np.float16)
        soft[..., 0] = 1.0
    labels = classes_override if classes_override is not None else data.classes
    for row, index in enumerate(chosen):
        start = int(rng.integers(0, max(1, lengths[index] - W + 1)))
        x[row] = _window(data.specs[index], start)
        track_classes = labels[index][start:start + W]
        y[row, :len(track_classes)] = track_classes
        if soft is not None:
            track_soft = data.soft[index][start:start + W]
            soft[row, :len(track_soft)] = track_soft
    return (x, y, soft) if with_soft else (x, y)


def supervised_batch(data: FrameData, mean: np.ndarray, std: np.ndarray, batch_size: int, sigma: float,
                     seed: int, unvoiced_weight: float = 1.0) -> Callable[[int, int], tuple]:
    """``make_batch`` for supervised training on labeled frames."""

    def make_batch(epoch: int, step: int):
        rng = np.random.default_rng([seed, epoch, step])
        x, classes = sample_windows(data, batch_size, rng)
        weights = frame_weights(classes, np.ones(len(classes), np.float32), unvoiced_weight)
        return features.normalize(x, mean, std)[..., None], target_distributions(classes, sigma), weights

    return make_batch


def frame_weights(classes: np.ndarray, window_weights: np.ndarray, unvoiced_weight: float = 1.0) -> np.ndarray | None:
    """Loss weight per output frame (batch, 31): the window's weight, times ``unvoiced_weight`` on no-voice frames.

    None when the options weigh every frame 1 (the paper's plain cross-entropy), whatever the batch holds,
    so that every step of a run gets the same kind of inputs.
    """
    window_weights = np.asarray(window_weights, np.float32)
    if unvoiced_weight == 1.0 and np.all(window_weights == 1.0):
        return None
    weights = np.repeat(window_weights[:, None], classes.shape[1], axis=1)
    return np.where(classes == 0, weights * np.float32(unvoiced_weight), weights).astype(np.float32)
