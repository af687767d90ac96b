"""Melody metrics with mir_eval: VR, VFA, RPA, RCA, OA (50-cent tolerance), per track and averaged over tracks."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np

from vocal_melody.errors import warn
from vocal_melody.formats.readers import read_f0

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
    """Average of each metric over tracks (the paper's per-track mean); a track's NaN (a metric it does not
    define) is left out, and a metric no track defines is NaN."""
    def mean(values: list[float]) -> float:
        defined = [value for value in values if not np.isnan(value)]
        return float(np.mean(defined)) if defined else float("nan")

    return {name: mean([scores[name] for scores in per_track]) for name in METRICS}


def group_mean_scores(per_track: list[dict[str, float]], groups: list[str]) -> dict[str, float]:
    """Average over groups of each group's mean over its tracks: every group (a validation manifest) weighs the
    same, however many tracks it has."""
    by_group: dict[str, list[dict[str, float]]] = {}
    for scores, group in zip(per_track, groups):
        by_group.setdefault(group, []).append(scores)
    return mean_scores([mean_scores(tracks) for tracks in by_group.values()])


def defined_scores(scores: dict[str, float], ref_f0: np.ndarray) -> dict[str, float]:
    """A track's scores with the metrics of voiced frames NaN where its reference has none (mir_eval says VR 1,
    RPA/RCA 0 there), so that means over tracks or groups (:func:`mean_scores` leaves NaN out) of voiced and
    instrumental tracks report the voiced tracks' voicing recall and raw pitch."""
    if (np.asarray(ref_f0) > 0).any():
        return scores
    return {**scores, "VR": float("nan"), "RPA": float("nan"), "RCA": float("nan")}


def voiced_fraction_scores(est_f0: np.ndarray) -> dict[str, float]:
    """Scores of music without a voice (no label): the share of frames called voiced, as VFA; the rest NaN."""
    return {**{m: float("nan") for m in METRICS}, "VFA": float(np.mean(np.asarray(est_f0) > 0))}


def check_pair(ref_path: Path, ref_times: np.ndarray, ref_f0: np.ndarray, est_path: Path,
               est_times: np.ndarray) -> None:
    """Warn about pairs mir_eval scores without complaint but a user would not mean to score."""
    for path, times in ((ref_path, ref_times), (est_path, est_times)):
        if len(times) > 1 and np.median(np.diff(times)) >= 1.0:
            warn(f"{path}: its times step by {np.median(np.diff(times)):g}; seconds are expected "
                 "(milliseconds or frame numbers?)")
    if not (ref_f0 > 0).any():
        warn(f"{ref_path}: the reference has no voiced frame: voicing recall and raw pitch are not defined "
             "(mir_eval reports 1 and 0)")
    if est_times[-1] < 0.9 * ref_times[-1]:
        warn(f"{est_path}: the estimate ends at {est_times[-1]:.2f} s, the reference at {ref_times[-1]:.2f} s; "
             "the rest is scored as unvoiced")


def evaluate_files(pairs: list[tuple[str, Path, Path]]) -> list[tuple[str, dict[str, float]]]:
    """mir_eval scores of each ``(track, reference, estimate)`` pair."""
    results = []
    for key, ref_path, est_path in pairs:
        ref_times, ref_f0 = read_f0(ref_path, keep_negative=True)
        est_times, est_f0 = read_f0(est_path, keep_negative=True)
        check_pair(ref_path, ref_times, ref_f0, est_path, est_times)
        results.append((key, melody_scores(ref_times, ref_f0, est_times, est_f0)))
    return results


def format_table(results: list[tuple[str, dict[str, float]]], separator: str = "  ") -> str:
    """Per-track rows and the mean over tracks; fixed-width for ``"  "``, CSV for ``","``."""
    rows = [["track", *METRICS]]
    rows += [[key, *(f"{scores[m]:.4f}" for m in METRICS)] for key, scores in results]
    mean = mean_scores([scores for _, scores in results])
    rows.append([f"mean ({len(results)} tracks)", *(f"{mean[m]:.4f}" for m in METRICS)])
    if separator == ",":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()
    width = max(len(r[0]) for r in rows)
    return "".join(f"{r[0]:<{width}}" + "".join(f"{separator}{v:>6}" for v in r[1:]) + "\n" for r in rows)
