"""Melody metrics with mir_eval: VR, VFA, RPA, RCA, OA (50-cent tolerance)."""

from __future__ import annotations

import warnings

import numpy as np

METRICS = ("VR", "VFA", "RPA", "RCA", "OA")
"""Short names, in table order."""
_MIR_EVAL_NAMES = {
    "VR": "Voicing Recall",
    "VFA": "Voicing False Alarm",
    "RPA": "Raw Pitch Accuracy",
    "RCA": "Raw Chroma Accuracy",
    "OA": "Overall Accuracy",
}


def melody_scores(ref_times: np.ndarray, ref_f0: np.ndarray,
                  est_times: np.ndarray, est_f0: np.ndarray) -> dict[str, float]:
    """mir_eval melody metrics of one track; the estimate is resampled onto the reference times."""
    import mir_eval

    with warnings.catch_warnings():
        # mir_eval warns about all-unvoiced references/estimates; the scores are still defined
        warnings.simplefilter("ignore")
        scores = mir_eval.melody.evaluate(np.asarray(ref_times, dtype=float), np.asarray(ref_f0, dtype=float),
                                          np.asarray(est_times, dtype=float), np.asarray(est_f0, dtype=float))
    return {short: float(scores[long]) for short, long in _MIR_EVAL_NAMES.items()}


def mean_scores(per_track: list[dict[str, float]]) -> dict[str, float]:
    """Average of each metric over tracks (the paper's per-track mean)."""
    if not per_track:
        return {name: float("nan") for name in METRICS}
    return {name: float(np.mean([scores[name] for scores in per_track])) for name in METRICS}
