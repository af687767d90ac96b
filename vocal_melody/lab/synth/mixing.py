"""Mixing synthesized voices with accompaniment, and labels on the extractor's 10 ms grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vocal_melody import features
from vocal_melody.fileio import write_sound_atomic
from vocal_melody.lab.synth import world
from vocal_melody.lab.synth.contours import VIBRATO_DEPTH_CENTS, vibrato_cents


SYNTH_RATE = 16000
"""Sample rate of synthesized material: twice what the model sees, cheap for WORLD."""


LABEL_HOP_S = features.FRAME_SECONDS


def rms_db(audio: np.ndarray, active: np.ndarray | None = None) -> float:
    """RMS level in dB of ``audio`` (only where ``active``, e.g. where the voice sings)."""
    samples = audio if active is None else audio[active]
    return 10.0 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-12)


def mix_at_ratio(vocal: np.ndarray, accompaniment: np.ndarray, ratio_db: float,
                 vocal_active: np.ndarray | None = None, peak: float = 0.9) -> tuple[np.ndarray, float]:
    """Mix so the vocal (while singing) is ``ratio_db`` above the accompaniment; peak-normalise.

    Returns the mix and the gain applied to the accompaniment.
    """
    n = min(len(vocal), len(accompaniment))
    vocal, accompaniment = vocal[:n], accompaniment[:n]
    active = None if vocal_active is None else vocal_active[:n]
    gain = 10.0 ** ((rms_db(vocal, active) - ratio_db - rms_db(accompaniment)) / 20.0)
    mix = vocal + gain * accompaniment
    scale = peak / max(np.max(np.abs(mix)), 1e-9)
    return (mix * scale).astype(np.float32), gain * scale


def label_frames(f0: np.ndarray, frame_period_ms: float, n_samples: int, sample_rate: int) -> np.ndarray:
    """The label on the extractor's 10 ms grid for audio of ``n_samples`` at ``sample_rate``."""
    n_samples_8k = int(round(n_samples * features.SAMPLE_RATE / sample_rate))
    return world.f0_on_grid(f0, frame_period_ms, features.n_frames_for(n_samples_8k), LABEL_HOP_S)


def write_audio(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit audio (format from the suffix) atomically."""
    write_sound_atomic(path, audio, sample_rate, subtype="PCM_16")


def voice_active(label_f0: np.ndarray, frame_period_ms: float, n_samples: int, sample_rate: int) -> np.ndarray:
    """Sample mask of the voiced frames of a label (for vocal-level measurements)."""
    frame = np.minimum((np.arange(n_samples) / sample_rate * 1000.0 / frame_period_ms).astype(int),
                       len(label_f0) - 1)
    return label_f0[frame] > 0


def with_vibrato(audio: np.ndarray, sample_rate: int, rng: np.random.Generator,
                 depth_cents: tuple[float, float] = VIBRATO_DEPTH_CENTS) -> np.ndarray:
    """``audio`` with a sung-like vibrato on every partial (a time warp), same length; ``depth_cents`` is the
    range of its peak deviation (default: the synthesized voices').

    Training material against a shortcut: a model that learned vibrato as the mark of a voice takes
    instruments played with vibrato (strings above all) for singing.
    """
    frame_period = 0.005
    n = len(audio)
    cents = vibrato_cents(int(n / sample_rate / frame_period) + 2, frame_period, rng, depth_cents)
    ratio = 2.0 ** (np.interp(np.arange(n) / sample_rate / frame_period, np.arange(len(cents)), cents) / 1200.0)
    read_at = np.cumsum(ratio / ratio.mean()) - 1.0  # reading faster raises every partial by the ratio
    return np.interp(read_at, np.arange(n), audio).astype(np.float32)
