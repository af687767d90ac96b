"""The one pitch-label definition: f0 <-> class index.

442 classes. Class 0 means "no voice". Class ``k`` in 1..441 is the pitch
MIDI ``40 + (k - 1) / 8``, i.e. MIDI 40 (E2, 82.4 Hz) to MIDI 95 (B6,
1975.5 Hz) in steps of 1/8 semitone (12.5 cents).

Every encoder and decoder in the project goes through this module. The
authors' published outputs are a perfect fourth sharp, most likely because
their training and inference used two different class-to-MIDI maps; having
exactly one map, tested by round trip, prevents that.
"""

from __future__ import annotations

import numpy as np

N_CLASSES = 442
"""Number of output classes (class 0 = no voice)."""
MIDI_MIN = 40.0
"""MIDI pitch of class 1."""
BINS_PER_SEMITONE = 8
"""Pitch classes per semitone."""
N_PITCH_CLASSES = N_CLASSES - 1
MIDI_MAX = MIDI_MIN + (N_PITCH_CLASSES - 1) / BINS_PER_SEMITONE
"""MIDI pitch of the last class (95.0)."""
CENTS_PER_BIN = 100.0 / BINS_PER_SEMITONE

LABEL_DEFINITION = {
    "n_classes": N_CLASSES,
    "midi_min": MIDI_MIN,
    "bins_per_semitone": BINS_PER_SEMITONE,
    "unvoiced_class": 0,
}
"""Stored inside every weights bundle, and checked when one is loaded."""


def hz_to_midi(f0_hz: np.ndarray) -> np.ndarray:
    """Convert frequencies in Hz to (fractional) MIDI numbers; <= 0 Hz gives NaN."""
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        midi = 69.0 + 12.0 * np.log2(f0_hz / 440.0)
    return np.where(f0_hz > 0, midi, np.nan)


def midi_to_hz(midi: np.ndarray) -> np.ndarray:
    """Convert (fractional) MIDI numbers to Hz."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def class_to_midi(classes: np.ndarray) -> np.ndarray:
    """MIDI number of each class; NaN for class 0 (no voice)."""
    classes = np.asarray(classes)
    midi = MIDI_MIN + (classes.astype(np.float64) - 1.0) / BINS_PER_SEMITONE
    return np.where(classes > 0, midi, np.nan)


def f0_to_class(f0_hz: np.ndarray) -> np.ndarray:
    """Nearest pitch class of each f0 value.

    Returns 0 (no voice) for f0 <= 0, NaN, or a pitch more than half a bin
    outside MIDI 40..95.
    """
    midi = hz_to_midi(f0_hz)
    with np.errstate(invalid="ignore"):
        position = np.rint((midi - MIDI_MIN) * BINS_PER_SEMITONE) + 1.0
        in_range = (position >= 1) & (position <= N_PITCH_CLASSES)
    return np.where(in_range, position, 0).astype(np.int64)


def class_to_f0(classes: np.ndarray) -> np.ndarray:
    """f0 in Hz of each class; 0.0 for class 0 (no voice)."""
    midi = class_to_midi(classes)
    return np.where(np.isnan(midi), 0.0, midi_to_hz(np.nan_to_num(midi)))


def target_distributions(classes: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Training targets for class indices, shape ``classes.shape + (N_CLASSES,)``.

    Voiced frames get a Gaussian over the pitch classes centred on the true
    class with standard deviation ``sigma`` bins, normalised to sum to 1 (the
    mass that would fall outside the range is dropped, not folded into class
    0). ``sigma == 0`` gives one-hot targets. Class 0 is always one-hot: being
    slightly off in pitch is not being slightly unvoiced.
    """
    classes = np.asarray(classes, dtype=np.int64)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    targets = np.zeros(classes.shape + (N_CLASSES,), dtype=np.float32)
    if sigma == 0:
        np.put_along_axis(targets, classes[..., None], 1.0, axis=-1)
        return targets
    bins = np.arange(1, N_CLASSES, dtype=np.float64)
    distance = bins - classes[..., None].astype(np.float64)
    gauss = np.exp(-0.5 * (distance / sigma) ** 2)
    gauss /= gauss.sum(axis=-1, keepdims=True)
    voiced = classes > 0
    targets[..., 1:] = np.where(voiced[..., None], gauss, 0.0)
    targets[..., 0] = np.where(voiced, 0.0, 1.0)
    return targets


def weighted_pitch(probabilities: np.ndarray, classes: np.ndarray, radius: int = 4) -> np.ndarray:
    """Sub-bin f0 from the softmax around each frame's chosen pitch class.

    For frames with ``classes > 0`` the result is the probability-weighted
    mean pitch (in MIDI, then converted to Hz) of the pitch classes within
    ``radius`` bins of the chosen class; frames with class 0 get 0 Hz.
    Vectorised over frames.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    classes = np.asarray(classes, dtype=np.int64)
    offsets = np.arange(-radius, radius + 1)
    neighbours = classes[:, None] + offsets[None, :]
    valid = (neighbours >= 1) & (neighbours <= N_PITCH_CLASSES) & (classes[:, None] > 0)
    gathered = np.take_along_axis(probabilities, np.clip(neighbours, 0, N_CLASSES - 1), axis=1)
    weights = np.where(valid, gathered, 0.0)
    total = weights.sum(axis=1)
    safe_total = np.where(total > 0, total, 1.0)
    mean_class = (weights * neighbours).sum(axis=1) / safe_total
    mean_class = np.where(total > 0, mean_class, classes)
    midi = MIDI_MIN + (mean_class - 1.0) / BINS_PER_SEMITONE
    return np.where(classes > 0, midi_to_hz(midi), 0.0)
