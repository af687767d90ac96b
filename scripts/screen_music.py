"""Screen the music pool for singing: the model's voicing over every track, and contact sheets to look at.

    python scripts/screen_music.py data/music -o data/music_screening

For every track of ``data/music/inventory.csv`` it writes the model's voicing
(fraction of frames called voiced, overall and in the most voiced 10 s) to
``OUT/voicing.csv`` (resumable: finished tracks are kept), and one contact
sheet per package (``OUT/sheets/PACKAGE_N.png``): per track the voicing curve
over the whole track and spectrograms of the three most voiced 4 s
stretches (0-2 kHz), where a voice would show curved harmonics, vibrato and formant sweeps.
The decisions themselves go, by hand, into ``vocal_melody/lab/corpora/music_screening.csv``
(track, decision, reason); ``--missing`` lists the tracks still without one, and
``--list voice --split train`` the audio paths of the training packages' tracks with singing (the
Noisy Student's unlabeled real vocal music).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Sequence


import numpy as np

from vocal_melody.cli.common import OneLineParser, run_cli
from vocal_melody.lab.corpora.music_pool import (
    DECISIONS,
    read_inventory,
    read_screening,
    split_of,
)
from vocal_melody.fileio import ensure_output_dir, write_text_atomic

FIELDS = ("track", "minutes", "voiced", "voiced_peak_10s", "peaks_s")
ROWS_PER_SHEET = 8
ZOOM_S = 4.0
ZOOM_HZ = 2000
"""Zoomed spectrograms show up to here: a voice's lower harmonics, vibrato and glides are clearest."""


def voicing_of(extractor, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame voicing decision and confidence of the model (its tuned threshold)."""
    from vocal_melody.inference.extractor import extract_melody

    _, f0, confidence = extract_melody(path, extractor=extractor)
    return f0 > 0, confidence


def peaks(voiced: np.ndarray, window: int, count: int = 3) -> list[int]:
    """Start frames of the ``count`` most voiced non-overlapping windows."""
    if len(voiced) <= window:
        return [0]
    running = np.convolve(voiced.astype(float), np.ones(window), "valid")
    starts = []
    for _ in range(count):
        best = int(np.argmax(running))
        if running[best] < 0:
            break
        starts.append(best)
        running[max(0, best - window):best + window] = -1
    return starts


def contact_sheet(rows: list[dict], curves: dict[str, np.ndarray], path: Path, title: str) -> None:
    """One PNG: per track, its voicing curve and three zoomed spectrograms with the voicing as a bottom strip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import stft

    from vocal_melody.audio import load_audio

    figure, axes = plt.subplots(len(rows), 4, figsize=(16, 2.1 * len(rows)), dpi=60,
                                gridspec_kw={"width_ratios": [2, 1, 1, 1]}, squeeze=False)
    for row, line in zip(rows, axes):
        curve = curves[row["track"]]
        smooth = np.convolve(curve.astype(float), np.ones(100) / 100, "same")
        line[0].plot(np.arange(len(curve)) / 100 / 60, smooth, color="C3")
        line[0].set_ylim(0, 1)
        line[0].set_title(f"{row['track']} ({float(row['voiced']):.0%} voiced)", fontsize=9)
        audio = load_audio(row["path"], 8000)
        for axis, start in zip(line[1:], [int(s) for s in row["peaks_s"].split(";")]):
            piece = audio[start * 8000:int((start + ZOOM_S) * 8000)]
            freqs, times, spec = stft(piece, 8000, nperseg=512, noverlap=448)
            keep = freqs <= ZOOM_HZ
            db = 20 * np.log10(np.abs(spec[keep]) + 1e-6)
            axis.pcolormesh(times + start, freqs[keep], db, shading="auto", cmap="magma",
                            vmin=db.max() - 60, vmax=db.max())
            voiced = curve[start * 100:int((start + ZOOM_S) * 100)]  # a strip along the bottom edge
            axis.fill_between(start + np.arange(len(voiced)) / 100, 0, voiced * ZOOM_HZ * 0.04, color="cyan")
            axis.set_ylim(0, ZOOM_HZ)
            axis.tick_params(labelsize=7)
        for axis in line[1 + len(row["peaks_s"].split(";")):]:
            axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def measure_voicing(inventory: list[dict], output: Path, weights: str | None) -> tuple[dict, dict]:
    """Each track's voicing curve and summary row (kept across runs in ``voicing.csv`` and ``curves/``)."""
    from tqdm import tqdm

    from vocal_melody.inference.extractor import DEFAULT_WEIGHTS, MelodyExtractor

    curves_dir = ensure_output_dir(output / "curves")
    table = output / "voicing.csv"
    done = {r["track"]: r for r in csv.DictReader(open(table))} if table.exists() else {}
    extractor = MelodyExtractor(weights or DEFAULT_WEIGHTS)
    curves = {}
    for row in tqdm(inventory, desc="tracks", unit="track", file=sys.stderr):
        curve_path = curves_dir / (row["track"].replace("/", "__") + ".npy")
        if row["track"] not in done or not curve_path.exists():
            voiced, _ = voicing_of(extractor, row["path"])
            np.save(curve_path, voiced)
            done[row["track"]] = {
                "track": row["track"], "minutes": row["minutes"], "voiced": f"{voiced.mean():.4f}",
                "voiced_peak_10s": f"{max(np.convolve(voiced, np.ones(1000), 'valid').max() / 1000, 0):.4f}"
                if len(voiced) > 1000 else f"{voiced.mean():.4f}",
                "peaks_s": ";".join(str(s // 100) for s in peaks(voiced, int(ZOOM_S * 100)))}
            lines = [",".join(FIELDS)] + [",".join(str(r[f]) for f in FIELDS) for r in done.values()]
            write_text_atomic(table, "\n".join(lines) + "\n")
        curves[row["track"]] = np.load(curve_path)
    return done, curves


def write_sheets(inventory: list[dict], done: dict, curves: dict, sheets: Path) -> None:
    """Contact sheets per package, ``ROWS_PER_SHEET`` tracks each."""
    from tqdm import tqdm

    by_package: dict[str, list[dict]] = {}
    for row in inventory:
        by_package.setdefault(row["package"], []).append({**done[row["track"]], "path": row["path"]})
    for package, rows in tqdm(by_package.items(), desc="sheets", file=sys.stderr):
        for first in range(0, len(rows), ROWS_PER_SHEET):
            part = rows[first:first + ROWS_PER_SHEET]
            contact_sheet(part, curves, sheets / f"{package}_{first // ROWS_PER_SHEET + 1}.png",
                          f"{package} ({first + 1}-{first + len(part)} of {len(rows)})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pool", help="the fetched music folder (with inventory.csv)")
    parser.add_argument("-o", "--output-dir", default="data/music_screening")
    parser.add_argument("-w", "--weights", help="weights bundle (default: the shipped weights)")
    parser.add_argument("--no-sheets", action="store_true")
    parser.add_argument("--missing", action="store_true", help="only list tracks without a decision")
    parser.add_argument("--list", choices=DECISIONS, help="only print the audio paths of tracks with this decision")
    parser.add_argument("--split", choices=("train", "val", "test"), help="with --list: only this split's packages")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    inventory = read_inventory(args.pool)
    if args.list:
        decided = read_screening()
        for row in inventory:
            if decided.get(row["track"], ("",))[0] == args.list and args.split in (None, split_of(row)):
                print(row["path"])
        return 0
    if args.missing:
        decided = read_screening()
        missing = [r["track"] for r in inventory if r["track"] not in decided]
        print("\n".join(missing) if missing else "every track has a decision")
        return 1 if missing else 0
    output = ensure_output_dir(args.output_dir)
    done, curves = measure_voicing(inventory, output, args.weights)
    if not args.no_sheets:
        write_sheets(inventory, done, curves, ensure_output_dir(output / "sheets"))
    print(f"voicing of {len(done)} tracks in {output / 'voicing.csv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
