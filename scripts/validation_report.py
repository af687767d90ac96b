"""Score a bundle on validation manifests at a range of voicing thresholds, per manifest and together.

    python scripts/validation_report.py CANDIDATE.npz \\
        --val data/synth_music/manifest.csv data/synth_music_val2/manifest.csv data/originals_val/manifest.csv \\
        --probe data/vibrato_val/manifest.csv data/probe_plain_val/manifest.csv --csv tracks.csv

The model runs once per track (pitch on every frame and the voicing probability ``1 - p(no voice)``);
every threshold is then a decision on those numbers. Each row: the mean OA over all ``--val`` tracks
(what the trainers and ``tune_voicing.py`` choose a threshold by), the mean over ``--val`` manifests of each
one's mean OA (the trainers' ``--val-mean groups``; with ``--val-mean groups`` it stars the best), the mean OA
of each manifest, and the share of frames called voiced on the ``--val`` tracks without a voice. ``--probe``
manifests are reported beside them and never count towards the choice. A manifest without a voiced frame is
reported as its voiced share (lower is better). ``--csv`` writes every track's mir_eval scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vocal_melody.cli import argtypes
from vocal_melody.cli.common import OneLineParser, run_cli
from vocal_melody.errors import MelodyError
from vocal_melody.evaluation import METRICS
from vocal_melody.features import frame_times
from vocal_melody.fileio import check_output_file, csv_text, write_text_atomic
from vocal_melody.inference.engines import ENGINES


def threshold_grid(low: float, high: float, step: float) -> list[float]:
    """``low``, ``low + step``, ... up to ``high`` (inclusive, to within rounding)."""
    if step <= 0 or high < low:
        raise MelodyError(f"--thresholds {low:g} {high:g} {step:g}: needs LOW <= HIGH and a positive STEP")
    return [round(low + i * step, 6) for i in range(int(np.floor((high - low) / step + 1e-9)) + 1)]


def track_scores(times: np.ndarray, pitch: np.ndarray, confidence: np.ndarray, reference: np.ndarray,
                 thresholds: list[float]) -> list[dict[str, float]]:
    """mir_eval scores of one track at each threshold: voiced where ``confidence >= threshold``."""
    from vocal_melody.evaluation import melody_scores

    ref_times = frame_times(len(reference))
    rows = []
    for threshold in thresholds:
        estimate = np.where(confidence >= threshold, pitch, 0.0)
        rows.append({**melody_scores(ref_times, reference, times, estimate),
                     "voiced": float(np.mean(estimate > 0))})
    return rows


def group_name(manifest: str, taken: set[str]) -> str:
    """A short column name: the manifest's folder (with its file name when the folder name is taken)."""
    path = Path(manifest)
    name = path.parent.name or path.stem
    return name if name not in taken else f"{name}/{path.name}"


def report(groups: dict[str, list[tuple[bool, list[dict]]]], val_names: list[str], thresholds: list[float],
           val_mean: str = "tracks") -> str:
    """The table as CSV text: a row per threshold, the best by the mean OA over the ``val_names`` groups' tracks
    (or, with ``val_mean="groups"``, over the groups' means) marked ``*``. ``groups``: each manifest's tracks as
    (has no voice, scores at each threshold)."""
    voiceless = {name: all(none for none, _ in tracks) for name, tracks in groups.items()}
    val_tracks = [track for name in val_names for track in groups[name]]
    header = ["threshold", f"all ({len(val_tracks)})", f"groups ({len(val_names)})"]
    header += [f"{name} ({len(tracks)}){' voiced' if voiceless[name] else ''}" for name, tracks in groups.items()]
    header.append(f"no voice ({sum(none for none, _ in val_tracks)}) voiced")
    table, overall, by_group = [], [], []
    for i, threshold in enumerate(thresholds):
        overall.append(float(np.mean([rows[i]["OA"] for _, rows in val_tracks])))
        by_group.append(float(np.mean([np.mean([rows[i]["OA"] for _, rows in groups[name]]) for name in val_names])))
        cells = [f"{threshold:.2f}", f"{overall[-1]:.4f}", f"{by_group[-1]:.4f}"]
        for name, tracks in groups.items():
            key = "voiced" if voiceless[name] else "OA"
            cells.append(f"{np.mean([rows[i][key] for _, rows in tracks]):.4f}")
        silent = [rows[i]["voiced"] for none, rows in val_tracks if none]
        cells.append(f"{np.mean(silent):.4f}" if silent else "-")
        table.append(cells)
    table[int(np.argmax(by_group if val_mean == "groups" else overall))][0] += " *"
    return "\n".join(",".join(row) for row in [header] + table)


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--val", required=True, nargs="+", help="manifests whose --val-split is scored together")
    parser.add_argument("--probe", nargs="+", default=[], help="more manifests, reported apart")
    parser.add_argument("--val-split", default="val")
    parser.add_argument("--val-mean", choices=["tracks", "groups"], default="tracks",
                        help="the mean that stars the best threshold: over all --val tracks, or over the manifests")
    parser.add_argument("--thresholds", nargs=3, type=argtypes.number(0.0, 1.0), metavar=("LOW", "HIGH", "STEP"),
                        default=[0.2, 0.75, 0.05], help="voicing thresholds to score (default: 0.2 0.75 0.05)")
    parser.add_argument("--engine", choices=ENGINES, default="openvino",
                        help="openvino (default): the float model, bf16 where the CPU has it")
    parser.add_argument("--csv", help="write every track's scores at every threshold to this file")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    thresholds = threshold_grid(*args.thresholds)
    if args.csv:
        check_output_file(args.csv, [args.bundle, *args.val, *args.probe])
    from vocal_melody.lab.corpora.datasets import read_manifest
    from vocal_melody.inference.extractor import MelodyExtractor, extract_melody

    manifests: dict[str, list] = {}
    for manifest in args.val + args.probe:
        tracks = read_manifest(manifest, splits=(args.val_split,))
        if not tracks:
            raise MelodyError(f"{manifest}: no tracks in split {args.val_split!r}")
        manifests[group_name(manifest, set(manifests))] = tracks
    extractor = MelodyExtractor(args.bundle, engine=args.engine)
    groups, per_track = {}, []
    for name, tracks in manifests.items():
        groups[name] = []
        for track in tracks:
            times, pitch, confidence = extract_melody(track.audio, extractor=extractor, voicing_threshold=0.0)
            rows = track_scores(times, pitch, confidence, track.f0, thresholds)
            groups[name].append((not (track.f0 > 0).any(), rows))
            per_track += [{"threshold": f"{t:.2f}", "manifest": name, "track": track.name,
                           **{key: f"{value:.4f}" for key, value in row.items()}} for t, row in zip(thresholds, rows)]
    print(f"{args.bundle} ({args.engine}): mean OA over tracks, or the voiced share where a manifest has no voice")
    print(report(groups, list(manifests)[:len(args.val)], thresholds, args.val_mean))
    if args.csv:
        write_text_atomic(args.csv, csv_text(per_track, ["threshold", "manifest", "track", *METRICS, "voiced"]))
    return 0


if __name__ == "__main__":
    run_cli(main)
