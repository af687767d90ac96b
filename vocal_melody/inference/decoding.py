"""From the model's per-frame softmax to f0: voicing rule, pitch class or sub-bin pitch, median filter."""

from __future__ import annotations

import numpy as np

from vocal_melody import labels


def decode(activations: np.ndarray, median_filter: int = 0, subbin: bool = False,
           voicing_threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Turn a per-frame softmax (n_frames, 442) into f0 in Hz and a voicing confidence.

    - Voicing: a frame is voiced when its most probable class is a pitch
      (the paper's rule), or, with ``voicing_threshold``, when the voicing
      probability ``1 - p(no voice)`` reaches the threshold.
    - Pitch: the most probable pitch class; with ``subbin`` the
      probability-weighted mean pitch of the classes around it.
    - ``median_filter``: odd kernel size of a median filter over the f0
      track (the authors' evaluation used 5); 0 or 1 for none.

    Returns ``(f0_hz, confidence)``, confidence being the voicing probability.
    """
    activations = np.asarray(activations, dtype=np.float32)
    confidence = 1.0 - activations[:, 0]
    classes = decoded_classes(activations, voicing_threshold)
    f0 = labels.weighted_pitch(activations, classes) if subbin else labels.class_to_f0(classes)
    return median_smoothed(f0, median_filter).astype(np.float64), confidence.astype(np.float64)


def decoded_classes(activations: np.ndarray, voicing_threshold: float | None = None) -> np.ndarray:
    """The class of every frame (0 = no voice) under a voicing rule: the paper's argmax (``None``), or the
    most probable pitch class where ``1 - p(no voice) >= voicing_threshold`` and 0 elsewhere."""
    activations = np.asarray(activations, dtype=np.float32)
    if voicing_threshold is None:
        return np.argmax(activations, axis=1)
    pitch_classes = 1 + np.argmax(activations[:, 1:], axis=1)
    return np.where(1.0 - activations[:, 0] >= voicing_threshold, pitch_classes, 0)


def median_smoothed(f0: np.ndarray, kernel: int) -> np.ndarray:
    """The f0 track median-filtered with an odd ``kernel`` (the authors' evaluation used 5); 0 or 1: unchanged."""
    if kernel <= 1:
        return f0
    from scipy.signal import medfilt

    return medfilt(f0, kernel)


def pitch_guess(activations: np.ndarray, subbin: bool = False) -> np.ndarray:
    """The most probable pitch of every frame in Hz, voiced or not (MIREX writes it negated for unvoiced frames)."""
    activations = np.asarray(activations, dtype=np.float32)
    pitch_classes = 1 + np.argmax(activations[:, 1:], axis=1)
    guess = labels.weighted_pitch(activations, pitch_classes) if subbin else labels.class_to_f0(pitch_classes)
    return guess.astype(np.float64)
