"""Score melody estimates against references with mir_eval (VR, VFA, RPA, RCA, OA).

    python evaluate.py REFERENCE ESTIMATE            # one pair of files
    python evaluate.py REF_FOLDER EST_FOLDER --csv scores.csv
    python evaluate.py data/synth/manifest.csv results/ --split test   # a compose corpus

Folders are matched by track name: ``pitch_song.wav.txt`` (this tool's
output) matches ``song.csv``, ``song_MELODY2.csv`` (MedleyDB),
``songREF.txt`` (ADC2004/MIREX05) or ``song_f0.csv``. The table lists each
track and the mean over tracks, as the paper reports.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
from pathlib import Path
from typing import Sequence

from melody.errors import MelodyError, OneLineParser, run_cli, warn
from melody.fileio import AUDIO_EXTENSIONS, write_text_atomic
from melody.metrics import METRICS, mean_scores, melody_scores
from melody.readers import read_f0

_ANNOTATION_SUFFIXES = re.compile(r"(_MELODY[123]|REF|_f0|\.f0|_pitch|\.pitch)$", re.IGNORECASE)
_F0_FILE_EXTENSIONS = (".txt", ".csv", ".json", ".tsv", ".f0", ".lab")


def track_key(path: str | os.PathLike) -> str:
    """The track name a reference or estimate file refers to."""
    name = Path(path).name
    if name.startswith("pitch_"):
        name = name[len("pitch_"):]
    stem, ext = os.path.splitext(name)
    if ext.lower() in _F0_FILE_EXTENSIONS:
        name = stem
    stem, ext = os.path.splitext(name)
    if ext.lower() in AUDIO_EXTENSIONS:
        name = stem
    return _ANNOTATION_SUFFIXES.sub("", name)


def _is_f0_json(path: Path) -> bool:
    try:
        read_f0(path)
    except MelodyError:
        return False
    return True


def _f0_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in _F0_FILE_EXTENSIONS and not path.name.startswith("."):
            key = track_key(path)
            if path.suffix.lower() == ".json" and not _is_f0_json(path):
                continue  # e.g. the metadata that compose writes beside each label
            if key in files:
                raise MelodyError(f"{folder}: two files for track {key!r}: {files[key].name} and {path.name}")
            files[key] = path
    return files


def _manifest_labels(path: Path, split: str | None) -> dict[str, Path] | None:
    """Track -> label file of a ``synth_testset.py compose`` manifest (one split or all); None if not a manifest."""
    import csv

    if path.suffix.lower() != ".csv":
        return None
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"audio", "label", "split"} <= set(rows[0]):
        return None
    labels = {track_key(row["audio"]): path.parent / row["label"] for row in rows
              if split is None or row["split"] == split}
    if not labels:
        raise MelodyError(f"{path}: no tracks in split {split!r}")
    return labels


def match_files(reference: Path, estimate: Path, split: str | None = None) -> list[tuple[str, Path, Path]]:
    """Pairs ``(track, reference file, estimate file)``: two files, two folders, or a manifest and a folder.

    A compose manifest's labels are matched to estimates by audio file name
    (``test_00006.flac`` <-> ``pitch_test_00006.flac.txt``); ``split`` keeps
    one of its splits.
    """
    for path in (reference, estimate):
        if not path.exists():
            raise MelodyError(f"{path}: no such file or folder")
    manifest = reference.is_file() and _manifest_labels(reference, split) is not None
    if manifest and not estimate.is_dir():
        raise MelodyError(f"{reference} is a corpus manifest: give the folder of estimates second")
    if not manifest and reference.is_dir() != estimate.is_dir():
        raise MelodyError("give two files or two folders (reference first, then estimate), "
                          "or a compose manifest and a folder")
    if not manifest and not reference.is_dir():
        return [(track_key(reference), reference, estimate)]
    references = _manifest_labels(reference, split) if manifest else _f0_files(reference)
    estimates = _f0_files(estimate)
    common = sorted(set(references) & set(estimates))
    if not common:
        raise MelodyError(f"no track of {reference} has an estimate in {estimate} "
                          "(names must match, e.g. song_MELODY2.csv and pitch_song.wav.txt)")
    unmatched = sorted(set(references) - set(estimates))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
        warn(f"{len(unmatched)} of {len(references)} references in {reference} have no estimate in {estimate} "
             f"({shown}); the mean covers the other {len(common)}")
    return [(key, references[key], estimates[key]) for key in common]


def check_pair(ref_path: Path, ref_times, ref_f0, est_path: Path, est_times) -> None:
    """Warn about pairs mir_eval scores without complaint but a user would not mean to score."""
    import numpy as np

    for path, times in ((ref_path, ref_times), (est_path, est_times)):
        if len(times) > 1 and np.median(np.diff(times)) >= 1.0:
            warn(f"{path}: its times step by {np.median(np.diff(times)):g}; seconds are expected "
                 "(milliseconds or frame numbers?)")
    if not (ref_f0 > 0).any():
        warn(f"{ref_path}: the reference has no voiced frame: voicing recall and raw pitch are not defined "
             "(mir_eval reports 0)")
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
        import csv

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()
    width = max(len(r[0]) for r in rows)
    return "".join(f"{r[0]:<{width}}" + "".join(f"{separator}{v:>6}" for v in r[1:]) + "\n" for r in rows)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(prog="evaluate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", help="reference f0 file or folder")
    parser.add_argument("estimate", help="estimated f0 file or folder (this tool's output)")
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    parser.add_argument("--split", help="with a compose manifest as reference: only this split (e.g. test)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    pairs = match_files(Path(args.reference), Path(args.estimate), args.split)
    if args.csv:
        target = Path(args.csv).resolve()
        inputs = {Path(p).resolve() for _, ref, est in pairs for p in (ref, est)}
        inputs |= {Path(args.reference).resolve(), Path(args.estimate).resolve()}
        if target in inputs:
            raise MelodyError(f"--csv {args.csv} is one of the files being scored; choose another file")
    results = evaluate_files(pairs)
    table = format_table(results)
    if args.csv:
        write_text_atomic(args.csv, format_table(results, separator=","))
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    run_cli(main)
