"""The paper's comparison on any data: teacher vs BTS vs NTS vs Noisy Student, and NS over iterations.

    python scripts/paper_experiments.py --labeled data/synth/manifest.csv \\
        --unlabeled ../shared/data/songs --out runs/paper --minutes-per-model 60

Steps (each resumable: rerun the same command after an interruption):

1. ``train_teacher.py`` on the labeled manifest's train split (validation: its val split);
2. ``train_student.py --setup bts|nts`` for one iteration and ``--setup ns`` for ``--ns-iterations``;
3. every model's melody for the test tracks (``melodyExtraction_NS.py``), scored with ``evaluate.py``,
   printed as one table (and written to ``OUT/results.csv``).

``--test`` takes a manifest (its ``--test-split``) or a folder of audio with labels matched by name.
Extra options for both trainers go in ``--train-options`` (default: bf16 mixed precision).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from melody.errors import MelodyError, OneLineParser, run_cli  # noqa: E402

PYTHON = sys.executable


def step(command: list[str], done: Path) -> None:
    """Run a training step unless its result exists; resume it if it was interrupted."""
    if done.exists():
        return
    run_dir = Path(command[command.index("--run-dir") + 1])
    started = (run_dir / "last.npz").exists() or (run_dir / "iter1" / "last.npz").exists()
    full = command + (["--resume"] if started else [])
    print("+ " + " ".join(shlex.quote(c) for c in full), file=sys.stderr)
    subprocess.run(full, check=True)


def test_tracks(test: str, split: str):
    from melody.datasets import pair_folder, read_manifest

    path = Path(test)
    return pair_folder(path) if path.is_dir() else read_manifest(path, splits=(split,))


def score(bundle: Path, tracks) -> dict[str, float]:
    """Extract with a bundle and score against the tracks' labels (means over tracks)."""
    import numpy as np

    from featureExtraction import frame_times
    from melody.metrics import mean_scores, melody_scores
    from melodyExtraction_NS import MelodyExtractor, extract_melody

    extractor = MelodyExtractor(bundle)
    scores = []
    for track in tracks:
        times, f0, _ = extract_melody(track.audio, extractor=extractor)
        reference = np.pad(track.f0, (0, max(0, len(f0) - len(track.f0))))[:len(f0)]
        scores.append(melody_scores(frame_times(len(reference)), reference, times, f0))
    return mean_scores(scores)


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labeled", required=True, help="labeled manifest (train and val splits)")
    parser.add_argument("--unlabeled", nargs="+", required=True, help="folders of unlabeled audio")
    parser.add_argument("--test", help="test manifest or folder (default: --labeled's test split)")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--out", required=True, help="folder for all runs")
    parser.add_argument("--ns-iterations", type=int, default=3)
    parser.add_argument("--minutes-per-model", type=float, default=None, help="time budget of each training")
    parser.add_argument("--train-options", default="--mixed-precision bf16")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    budget = ["--max-minutes", str(args.minutes_per_model)] if args.minutes_per_model else []
    options = shlex.split(args.train_options) + budget
    teacher = out / "teacher" / "best.npz"
    step([PYTHON, str(ROOT / "train_teacher.py"), "--train", args.labeled, "--run-dir", str(out / "teacher"),
          *options], out / "teacher" / "done")
    if not teacher.exists():
        raise MelodyError(f"the teacher did not finish: rerun to resume ({teacher} missing)")
    (out / "teacher" / "done").touch()
    models = {"teacher (supervised)": teacher}
    for setup, iterations in (("bts", 1), ("nts", 1), ("ns", args.ns_iterations)):
        run_dir = out / setup
        step([PYTHON, str(ROOT / "train_student.py"), "--teacher", str(teacher), "--setup", setup,
              "--iterations", str(iterations), "--labeled", args.labeled, "--unlabeled", *args.unlabeled,
              "--run-dir", str(run_dir), *options], run_dir / "done")
        for iteration in range(1, iterations + 1):
            bundle = run_dir / f"iter{iteration}" / "best.npz"
            if bundle.exists():
                models[f"{setup} iteration {iteration}"] = bundle
        if (run_dir / "iterations.csv").exists() and len(
                (run_dir / "iterations.csv").read_text().strip().splitlines()) > iterations:
            (run_dir / "done").touch()
    tracks = test_tracks(args.test or args.labeled, args.test_split)
    rows = ["model,VR,VFA,RPA,RCA,OA"]
    print(f"| model | VR | VFA | RPA | RCA | OA |  ({len(tracks)} test tracks)\n|---|---|---|---|---|---|")
    for name, bundle in models.items():
        scores = score(bundle, tracks)
        values = [f"{scores[m]:.4f}" for m in ("VR", "VFA", "RPA", "RCA", "OA")]
        print(f"| {name} | " + " | ".join(values) + " |")
        rows.append(",".join([name, *values]))
    (out / "results.csv").write_text("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    run_cli(main)
