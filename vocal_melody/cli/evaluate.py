"""Score melody estimates against references with mir_eval (VR, VFA, RPA, RCA, OA).

    python evaluate.py REFERENCE ESTIMATE            # one pair of files (or: vocal-melody-evaluate ...)
    python evaluate.py REF_FOLDER EST_FOLDER --csv scores.csv
    python evaluate.py data/synth/manifest.csv results/ --split test   # a compose corpus

Folders are matched by track name: ``pitch_song.wav.txt`` (this tool's
output) matches ``song.csv``, ``song_MELODY2.csv`` (MedleyDB),
``songREF.txt`` (ADC2004/MIREX05) or ``song_f0.csv``. The table lists each
track and the mean over tracks, as the paper reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from vocal_melody.cli.common import OneLineParser, program_name, run_cli
from vocal_melody.errors import MelodyError
from vocal_melody.evaluation import evaluate_files, format_table
from vocal_melody.fileio import write_text_atomic
from vocal_melody.formats.tracks import match_files


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(prog=program_name("evaluate.py"), description=__doc__.split("\n\n")[0])
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


def command() -> None:
    """The ``vocal-melody-evaluate`` console command."""
    run_cli(main)
