"""The paper's experiments, each runnable alone from a given teacher at a stated budget.

    python scripts/paper_experiments.py setups --teacher TEACHER.npz --labeled data/synth_music/manifest.csv \\
        --unlabeled ../shared/data/songs --out runs/paper --minutes-per-model 30

Experiments (the first argument):

- ``setups``: teacher vs Basic Teacher-Student (bts) vs Noisy Teacher-Student (nts) vs Noisy Student (ns),
  one iteration each;
- ``iterations``: Noisy Student iterations 1..``--ns-iterations`` (each iteration's best student
  teaches the next);
- ``size``: Noisy Student with ``--sizes`` percent of the unlabeled files (nested subsets, fixed by
  ``--seed``);
- ``singing``: Noisy Student with unlabeled audio that has singing (``--unlabeled``) against audio
  without (``--instrumental``, e.g. the music pool's instrumental tracks), both together, and both
  together filtered to the files the teacher calls at least ``--min-voiced`` voiced.

Without ``--teacher`` a teacher is trained first (``OUT/teacher``). Every model is one
``train_student.py`` (or ``train_teacher.py``) run under ``OUT/EXPERIMENT/MODEL`` with
``--max-minutes M`` per model; a model whose budget ended before its first validation is scored
from its last checkpoint (marked ``*``). Each model is scored on every set in ``--sets``
(``test``: the labeled manifest's test split or ``--test``; the others are ``bench/accuracy.py``'s
sets), per track into ``OUT/EXPERIMENT/tracks.csv``, as means into ``OUT/EXPERIMENT/results.md``
(printed too) and, for ``iterations`` and ``size``, as a plot of OA (``OUT/EXPERIMENT/oa.png``).
Rerunning the same command trains nothing twice and scores nothing twice.
"""

from __future__ import annotations

import csv
import math
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from vocal_melody.cli import argtypes
from vocal_melody.cli.common import OneLineParser, run_cli
from vocal_melody.errors import MelodyError
from vocal_melody.evaluation import METRICS, mean_scores
from vocal_melody.fileio import csv_text, write_text_atomic
from vocal_melody.inference.engines import ENGINES

ROOT = Path(__file__).resolve().parents[1]

PYTHON = sys.executable
EXPERIMENTS = ("setups", "iterations", "size", "singing")
SETS = ("test", "synth", "vocadito", "stems", "instrumental", "synth-music")
TRACK_FIELDS = ("model", "set", "track", *METRICS)


# ----------------------------------------------------------------------------- training steps

def train(command: list[str], run_dir: Path) -> None:
    """Run a training command once (a ``done`` marker says it ran); resume it if it was interrupted."""
    done = run_dir / "done"
    if done.exists():
        return
    started = (run_dir / "last.npz").exists() or (run_dir / "iter1" / "last.npz").exists()
    full = command + (["--resume"] if started else [])
    print("+ " + " ".join(shlex.quote(c) for c in full), file=sys.stderr)
    if subprocess.run(full).returncode != 0:  # the step printed its own one-line error
        raise MelodyError(f"the training step for {run_dir} failed (its error is above); rerun to resume")
    done.touch()


def model_bundle(run_dir: Path) -> tuple[Path, bool]:
    """The bundle a run produced and whether it is a last checkpoint (budget ended before validation)."""
    for folder in (run_dir / "iter1", run_dir):
        if (folder / "best.npz").exists():
            return folder / "best.npz", False
    for folder in (run_dir / "iter1", run_dir):
        if (folder / "last.npz").exists():
            return folder / "last.npz", True
    raise MelodyError(f"{run_dir}: the run left no model; delete {run_dir / 'done'} and rerun to train again")


def student(args, teacher: Path, run_dir: Path, setup: str = "ns", unlabeled: list[str] | None = None,
            manifests: list[str] | None = None) -> tuple[Path, bool]:
    """One iteration of a student setup from ``teacher``; returns its bundle."""
    unlabeled = args.unlabeled if unlabeled is None else unlabeled
    manifests = (args.unlabeled_manifest or []) if manifests is None else manifests
    command = [PYTHON, str(ROOT / "train_student.py"), "--teacher", str(teacher), "--setup", setup,
               "--iterations", "1", "--labeled", args.labeled, "--run-dir", str(run_dir), *args.options]
    if unlabeled:
        command += ["--unlabeled", *unlabeled]
    if manifests:
        command += ["--unlabeled-manifest", *manifests]
    train(command, run_dir)
    return model_bundle(run_dir)


def teacher_bundle(args) -> tuple[Path, bool]:
    """The given teacher, or one trained under ``OUT/teacher``."""
    if args.teacher:
        if not Path(args.teacher).is_file():
            raise MelodyError(f"{args.teacher}: no such teacher bundle")
        from vocal_melody.bundle import read_bundle

        read_bundle(args.teacher)  # a broken teacher fails before any run folder is made
        return Path(args.teacher), False
    run_dir = Path(args.out) / "teacher"
    train([PYTHON, str(ROOT / "train_teacher.py"), "--train", args.labeled, "--run-dir", str(run_dir),
           *args.options], run_dir)
    return model_bundle(run_dir)


def unlabeled_files(args) -> list[str]:
    """Every unlabeled audio file of ``--unlabeled`` and ``--unlabeled-manifest`` (labels withheld)."""
    from vocal_melody.lab.corpora.datasets import read_manifest, unlabeled_folder

    files = [str(t.audio) for t in unlabeled_folder(args.unlabeled)] if args.unlabeled else []
    for manifest in args.unlabeled_manifest or []:
        files += [str(t.audio) for t in read_manifest(manifest, splits=("train",), with_labels=False)]
    if not files:
        raise MelodyError("no unlabeled audio: give --unlabeled or --unlabeled-manifest")
    return files


def voiced_fraction(bundle: Path, files: list[str], engine: str = "auto") -> dict[str, float]:
    """The share of frames the teacher calls voiced, per file."""
    from vocal_melody.inference.extractor import MelodyExtractor, extract_melody

    extractor = MelodyExtractor(bundle, engine=engine)
    return {path: float(np.mean(extract_melody(path, extractor=extractor)[1] > 0)) for path in files}


def experiment_models(args, teacher: Path, marked: bool) -> dict[str, tuple[Path, bool]]:
    """Train the experiment's models; name -> (bundle, scored from a last checkpoint)."""
    folder = Path(args.out) / args.experiment
    models = {"teacher": (teacher, marked)}
    if args.experiment == "setups":
        for setup in ("bts", "nts", "ns"):
            models[setup] = student(args, teacher, folder / setup, setup)
    elif args.experiment == "iterations":
        current = teacher
        for iteration in range(1, args.ns_iterations + 1):
            models[f"ns{iteration}"] = student(args, current, folder / f"ns{iteration}")
            current = models[f"ns{iteration}"][0]
    elif args.experiment == "size":
        files = unlabeled_files(args)
        order = np.random.default_rng(args.seed).permutation(len(files))
        for percent in args.sizes:
            count = max(1, math.ceil(len(files) * percent / 100))
            subset = [files[i] for i in sorted(order[:count])]
            models[f"ns {percent:g}%"] = student(args, teacher, folder / f"ns_{percent:g}", unlabeled=subset,
                                                 manifests=[])
    else:  # singing
        if not args.instrumental:
            raise MelodyError("the singing experiment needs --instrumental audio without singing")
        vocal = unlabeled_files(args)
        from vocal_melody.lab.corpora.datasets import unlabeled_folder

        instrumental = [str(t.audio) for t in unlabeled_folder(args.instrumental)]
        voicing = voiced_fraction(teacher, vocal + instrumental, args.engine)
        kept = [path for path in vocal + instrumental if voicing[path] >= args.min_voiced]
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "filter.csv", "file,voiced,kept\n" + "".join(
            f"{path},{voicing[path]:.4f},{int(path in kept)}\n" for path in vocal + instrumental))
        if not kept:
            raise MelodyError(f"no unlabeled file is at least {args.min_voiced:.0%} voiced by the teacher")
        for name, files in (("ns with singing", vocal), ("ns without singing", instrumental),
                            ("ns with both", vocal + instrumental), ("ns with both, filtered", kept)):
            models[name] = student(args, teacher, folder / name.replace(" ", "_").replace(",", ""),
                                   unlabeled=files, manifests=[])
    return models


# ----------------------------------------------------------------------------- scoring

def bench_accuracy():
    """The checkout's ``bench/accuracy.py``, which builds the benchmark sets (a tool of the checkout)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "bench" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluation_sets(args) -> dict[str, list[tuple[str, Path, Path | None]]]:
    """name -> (track, audio, label or None) of every requested set."""
    from vocal_melody.lab.corpora.datasets import pair_folder, read_manifest

    accuracy = bench_accuracy()

    sets = {}
    if "test" in args.sets:
        test = Path(args.test or args.labeled)
        tracks = pair_folder(test) if test.is_dir() else read_manifest(test, splits=(args.test_split,))
        sets["test split"] = [(Path(t.audio).stem, Path(t.audio), t) for t in tracks]
    if "synth" in args.sets:
        sets["synth test split"] = accuracy.synth_set(accuracy.BENCH_DATA / "synth")
    if "vocadito" in args.sets:
        sets.update(accuracy.vocadito_sets(accuracy.BENCH_DATA / "real"))
    if "stems" in args.sets:
        sets["stems anasyn"] = accuracy.stems_set(accuracy.BENCH_DATA / "anasyn")
    if "instrumental" in args.sets:
        sets["instrumental false-voice rate"] = accuracy.instrumental_set(accuracy.BENCH_DATA / "instrumental",
                                                                          accuracy.music_pool_folder())
    if "synth-music" in args.sets:
        sets["synth test split over test packages"] = accuracy.synth_set(accuracy.BENCH_DATA / "synth_music",
                                                                         accuracy.music_pool_folder())
    return sets


def score_track(extractor, audio: Path, label) -> dict[str, float]:
    """mir_eval scores of one track; without a label, the voiced fraction as VFA (instrumental music)."""
    from vocal_melody.evaluation import melody_scores, voiced_fraction_scores
    from vocal_melody.features import frame_times
    from vocal_melody.formats.readers import read_f0
    from vocal_melody.inference.extractor import extract_melody

    times, f0, _ = extract_melody(audio, extractor=extractor)
    if label is None:
        return voiced_fraction_scores(f0)
    if isinstance(label, Path):
        ref_times, reference = read_f0(label)
    else:  # a LabeledTrack of the labeled manifest
        reference = np.pad(label.f0, (0, max(0, len(f0) - len(label.f0))))[:len(f0)]
        ref_times = frame_times(len(reference))
    return melody_scores(ref_times, reference, times, f0)


def score_models(models: dict[str, tuple[Path, bool]], sets: dict, folder: Path, engine: str = "auto") -> list[dict]:
    """Per-track rows of every model on every set (cached per model in ``folder/scores``)."""
    from vocal_melody.inference.extractor import MelodyExtractor

    rows = []
    for name, (bundle, _) in models.items():
        cache = folder / "scores" / f"{name.replace(' ', '_').replace(',', '').replace('%', 'pc')}.csv"
        if cache.exists() and cache.stat().st_mtime >= bundle.stat().st_mtime:
            rows += [{**r, **{m: float(r[m]) for m in METRICS}} for r in csv.DictReader(open(cache))]
            continue
        extractor = MelodyExtractor(bundle, engine=engine)
        model_rows = [{"model": name, "set": set_name, "track": track, **score_track(extractor, audio, label)}
                      for set_name, tracks in sets.items() for track, audio, label in tracks]
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cache, _csv(model_rows))
        rows += model_rows
    return rows


def _csv(rows: list[dict]) -> str:
    return csv_text(({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows),
                    TRACK_FIELDS)


def means_table(rows: list[dict], models: dict[str, tuple[Path, bool]]) -> str:
    """Markdown: one row per set and model, means over tracks (instrumental sets: voiced fraction as VFA)."""
    lines = ["| set | model | tracks | " + " | ".join(METRICS) + " |", "|---|---|---|" + "---|" * len(METRICS)]
    for set_name in dict.fromkeys(r["set"] for r in rows):
        for name, (_, marked) in models.items():
            scores = [r for r in rows if r["set"] == set_name and r["model"] == name]
            mean = mean_scores(scores)
            cells = ["-" if np.isnan(mean[m]) else f"{mean[m]:.3f}" for m in METRICS]
            lines.append(f"| {set_name} | {name}{' *' if marked else ''} | {len(scores)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_oa(rows: list[dict], models: dict, path: Path, xlabel: str, positions: list[float]) -> None:
    """OA (instrumental sets: 1 - voiced fraction) of each set against iteration or unlabeled size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4), dpi=90)
    for set_name in dict.fromkeys(r["set"] for r in rows):
        values = []
        for name in models:
            mean = mean_scores([r for r in rows if r["set"] == set_name and r["model"] == name])
            values.append(1.0 - mean["VFA"] if np.isnan(mean["OA"]) else mean["OA"])
        axis.plot(positions, values, marker="o", label=set_name)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("OA (instrumental: 1 - voiced fraction)")
    axis.set_xticks(positions)
    axis.set_xticklabels(list(models), fontsize=8)
    axis.legend(fontsize=7)
    figure.tight_layout()
    from vocal_melody.fileio import atomic_path

    with atomic_path(path) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)


# ----------------------------------------------------------------------------- CLI

def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="paper_experiments.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=EXPERIMENTS)
    parser.add_argument("--labeled", required=True, help="labeled manifest (train and val splits)")
    parser.add_argument("--teacher", help="start from this teacher bundle (default: train one in OUT/teacher)")
    parser.add_argument("--unlabeled", nargs="+", default=[], help="unlabeled audio (folders or files) with singing")
    parser.add_argument("--unlabeled-manifest", nargs="+", help="synthesized mixes whose labels are withheld")
    parser.add_argument("--instrumental", nargs="+", help="singing experiment: unlabeled audio without singing")
    parser.add_argument("--min-voiced", type=argtypes.share, default=0.3,
                        help="singing experiment: keep files the teacher calls at least this voiced (default 0.3)")
    parser.add_argument("--ns-iterations", type=argtypes.positive_int, default=3)
    parser.add_argument("--sizes", type=argtypes.number(0.0, 100.0, low_open=True), nargs="+",
                        default=[25.0, 50.0, 100.0],
                        help="size experiment: percent of the unlabeled files (default 25 50 100)")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--test", help="test manifest or folder for the 'test' set (default: --labeled)")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--out", required=True, help="folder for all runs and results")
    parser.add_argument("--minutes-per-model", type=argtypes.positive_float, default=None,
                        help="training budget of each model")
    parser.add_argument("--train-options", default="--mixed-precision bf16",
                        help="extra options for the trainers (default: bf16 mixed precision)")
    parser.add_argument("--seed", type=argtypes.seed, default=0)
    parser.add_argument("--engine", choices=list(ENGINES), default="auto",
                        help="engine that scores the models (auto: OpenVINO, converted once per model)")
    parser.add_argument("--debug", action="store_true")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    budget = ["--max-minutes", str(args.minutes_per_model)] if args.minutes_per_model else []
    args.options = shlex.split(args.train_options) + budget
    if not Path(args.labeled).is_file():
        raise MelodyError(f"{args.labeled}: no such labeled manifest")
    teacher, marked = teacher_bundle(args)
    models = experiment_models(args, teacher, marked)
    folder = Path(args.out) / args.experiment
    folder.mkdir(parents=True, exist_ok=True)
    rows = score_models(models, evaluation_sets(args), folder, args.engine)
    write_text_atomic(folder / "tracks.csv", _csv(rows))
    table = means_table(rows, models)
    write_text_atomic(folder / "results.md", table)
    sys.stdout.write(table)
    if args.experiment == "iterations":
        plot_oa(rows, models, folder / "oa.png", "Noisy Student iteration", list(range(len(models))))
    elif args.experiment == "size":
        plot_oa(rows, models, folder / "oa.png", "unlabeled files used (%)", [0.0, *args.sizes])
    return 0


if __name__ == "__main__":
    run_cli(main)
