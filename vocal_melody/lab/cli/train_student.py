"""Self-training from a teacher bundle: the paper's three teacher-student setups.

    python train_student.py --teacher runs/teacher/best.npz --setup ns --iterations 2 \\
        --labeled data/synth/manifest.csv --unlabeled ../shared/data/songs data/unlabeled \\
        --run-dir runs/ns --mixed-precision bf16 --max-minutes 120

Setups (who sees randAudioAugment-ed audio):

- ``bts`` Basic Teacher-Student: neither; the teacher labels clean audio,
  the student learns from clean audio.
- ``nts`` Noisy Teacher-Student: both; the teacher labels the augmented
  audio the student learns from.
- ``ns`` Noisy Student: the teacher labels clean audio, the student learns
  from augmented audio (labeled and unlabeled).

Each iteration: hard pseudo labels (the teacher's argmax per frame, or with
``--pseudo-voicing`` a voicing threshold) are computed once and cached; the
student is trained on batches mixing labeled windows (cross-entropy with the
labels) and unlabeled windows (cross-entropy with the pseudo labels, weighted
by ``--unlabeled-weight``) in the ratio ``--ratio``; the best student on
validation OA becomes the teacher of the next iteration. ``--soft-targets W``
distils: each frame's target is W x the teacher's output distribution + (1 - W)
x the hard label's, on both kinds of window.
``RUN_DIR/iterN/best.npz`` and ``RUN_DIR/iterations.csv`` keep every
iteration. Augmented features are precomputed per track (``--k`` chains per
track; 1 as in the original) and cached.

For a cluster, ``--prepare-only --shard k/N`` computes the pseudo labels and
augmented features of every N-th unlabeled file for the next iteration, so
machines can share the work before one machine trains.

For a GPU machine without TensorFlow: ``--export DIR`` writes one iteration's
data as a training folder (8 kHz FLAC views, as the setup augments them,
with labels and pseudo labels, plus the clean validation tracks), and
``--data DIR`` trains on such a folder, also under ``KERAS_BACKEND=jax``::

    python train_student.py --teacher T.npz --labeled L.csv --unlabeled U --export data/ns_folder
    KERAS_BACKEND=jax python train_student.py --teacher T.npz --data data/ns_folder --run-dir runs/gpu -gpu 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from vocal_melody.bundle import read_bundle
from vocal_melody.cache import file_digest
from vocal_melody.cli.argtypes import number, positive_int, voicing_rule
from vocal_melody.cli.common import OneLineParser, program_name, run_cli
from vocal_melody.lab.cli.training_options import (add_training_options, check_output, copy_output, filters_list,
                                               labeled_tracks, prepare_environment, train_config,
                                               validation_sources)
from vocal_melody.lab.corpora.datasets import FeatureCache, read_manifest, unlabeled_folder
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import csv_text, ensure_output_dir, write_text_atomic
from vocal_melody.runtime import keras_backend
from vocal_melody.lab.training.distribute import make_strategy
from vocal_melody.lab.training.folder import ExportSources, export_folder, read_training_folder, training_folder_info
from vocal_melody.lab.training.frames import FrameData, load_frame_data
from vocal_melody.lab.training.loop import TrainConfig, Trainer
from vocal_melody.lab.training.student import (SETUPS, SoftTeacher, StudentData, build_labeled, build_unlabeled,
                                               load_teacher, mixed_batch)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like k/N (e.g. 0/4), got {text}") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"shard k/N needs 0 <= k < N, got {text}")
    return k, n


def parse_ratio(text: str) -> tuple[int, int]:
    try:
        labeled, unlabeled = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"ratio must look like L:U (e.g. 1:1), got {text}") from None
    if labeled < 0 or unlabeled < 1:
        raise argparse.ArgumentTypeError(f"ratio needs L >= 0 and U >= 1, got {text}")
    return labeled, unlabeled


def train_from_folder(args: argparse.Namespace) -> int:
    """One student iteration from a training folder: its audio is already augmented as the setup wants."""
    folder, teacher_path = Path(args.data), Path(args.teacher)
    info, tracks = read_training_folder(folder, teacher_path)
    cache = FeatureCache.under(args.cache_dir)
    progress = not args.quiet
    val_data = load_frame_data(tracks["val"], cache, progress, desc="val features")
    unlabeled_data = load_frame_data(tracks["pseudo"], cache, progress, desc="pseudo-labeled features")
    labeled_data = load_frame_data(tracks["train"], cache, progress, desc="labeled features") \
        if tracks["train"] and args.ratio[0] else None
    teacher = read_bundle(teacher_path)
    config = train_config(args, role="student", setup=info["setup"], iteration=1, teacher=str(teacher_path),
                          data=str(folder), unlabeled_files=len(tracks["pseudo"]), k=info["k"],
                          ratio=f"{args.ratio[0]}:{args.ratio[1]}", unlabeled_weight=args.unlabeled_weight,
                          original_rate_quirk=info["original_rate_quirk"])
    config.run_dir = Path(args.run_dir) / "iter1"
    strategy = make_strategy(args.gpu_index, args.cpu_devices)
    init = _init_weights(args, teacher, teacher.model_args)
    trainer = Trainer(teacher.model_args, config, teacher.mean, teacher.std, strategy, init)
    if (config.run_dir / "last.npz").exists():
        trainer.resume()
    if progress:
        print(f"training on {folder}: {labeled_data.minutes if labeled_data else 0:.1f} min labeled, "
              f"{unlabeled_data.minutes:.1f} min pseudo-labeled, validating on {len(tracks['val'])} tracks "
              f"({val_data.minutes:.1f} min); Keras backend {keras_backend()}", file=sys.stderr)
    make_batch = mixed_batch(labeled_data, unlabeled_data, trainer.mean, trainer.std, args.batch_size, args.ratio,
                             args.sigma, args.unlabeled_weight, args.seed + 1, args.unvoiced_weight)
    trainer.fit(make_batch, val_data)
    if trainer.best_path.exists():
        copy_output(trainer.best_path, args.output)
    return 0


def _prepare_on_ray(args: argparse.Namespace, unlabeled: list, teacher_path: Path) -> None:
    """With ``--ray``: the Ray workers fill the cache that the local pseudo-labelling then reads."""
    if args.ray is None:
        return
    from vocal_melody.lab.training.ray_labels import prepare_on_ray

    prepare_on_ray(unlabeled, teacher_path, args.cache_dir, args.k, args.seed, args.original_rate_quirk, args.setup,
                   args.ray, progress=not args.quiet, pseudo_voicing=args.pseudo_voicing)


# ----------------------------------------------------------------------------- iterations

def _unlabeled_tracks(args: argparse.Namespace) -> list:
    """The unlabeled audio of this shard: folders and files, and manifests whose labels are withheld."""
    unlabeled = unlabeled_folder(args.unlabeled or [], shard=args.shard) if args.unlabeled else []
    for manifest in args.unlabeled_manifest or []:
        tracks = read_manifest(manifest, splits=(args.unlabeled_split,), with_labels=False)
        unlabeled += [t for i, t in enumerate(tracks) if i % args.shard[1] == args.shard[0]]
    if not unlabeled:
        if args.shard[1] > 1 and (args.unlabeled or args.unlabeled_manifest):
            raise MelodyError(f"shard {args.shard[0]}/{args.shard[1]} holds no unlabeled file: there are fewer "
                              f"files than shards; use fewer shards")
        raise MelodyError("no unlabeled audio: give --unlabeled folders or --unlabeled-manifest")
    return unlabeled


def run_iterations(args: argparse.Namespace) -> int:
    """``--export``, ``--prepare-only``, or the iterations of a run."""
    read_bundle(args.teacher)  # a broken teacher fails now, not after minutes of feature extraction
    check_output(args)
    store = StudentData(Path(args.cache_dir), args.k, args.seed, args.original_rate_quirk, not args.quiet,
                        args.pseudo_voicing)
    unlabeled = _unlabeled_tracks(args)
    teacher_path = Path(args.teacher)
    if args.export:
        labeled = labeled_tracks(args.labeled, args.train_split, args.label_format) if args.labeled else []
        val = labeled_tracks(validation_sources(args.val, args.labeled), args.val_split, args.label_format)
        sources = ExportSources(teacher_path, args.setup, args.labeled, [str(u) for u in args.unlabeled or []],
                                [str(u) for u in args.unlabeled_manifest or []], args.unlabeled_weight)
        export_folder(Path(args.export), sources, store, labeled if args.ratio[0] else [], unlabeled, val,
                      progress=not args.quiet)
        return 0
    if args.prepare_only:
        _prepare_on_ray(args, unlabeled, teacher_path)
        build_unlabeled(unlabeled, store, load_teacher(teacher_path), file_digest(teacher_path), args.setup)
        if not args.quiet:
            print(f"prepared pseudo labels for {len(unlabeled)} files (shard {args.shard[0]}/{args.shard[1]})",
                  file=sys.stderr)
        return 0
    return _train_iterations(args, store, unlabeled)


def _train_iterations(args: argparse.Namespace, store: StudentData, unlabeled: list) -> int:
    """Each iteration's student, taught by the previous iteration's best; returns at the time budget."""
    labeled = labeled_tracks(args.labeled, args.train_split, args.label_format) if args.labeled else []
    val = labeled_tracks(validation_sources(args.val, args.labeled), args.val_split, args.label_format)
    val_data = load_frame_data(val, store.features, progress=not args.quiet, desc="val features")
    augmented = SETUPS[args.setup].student_augmented
    use_labeled = bool(labeled and args.ratio[0])
    # soft targets: the labeled views get each iteration's teacher's distributions, below
    labeled_data = build_labeled(labeled, store, augmented) if use_labeled and not args.soft_targets else None
    summary_rows: list[dict] = []
    training_started = None  # the budget counts training, not the preparation before it
    strategy = make_strategy(args.gpu_index, args.cpu_devices)
    teacher_path = Path(args.teacher)
    for iteration in range(1, args.iterations + 1):
        config = _iteration_config(args, iteration, teacher_path, len(unlabeled), training_started)
        if config is None:
            return 0
        _prepare_on_ray(args, unlabeled, teacher_path)
        taught_on = (_iteration_dir(args, iteration + 1) / "last.npz").exists()  # its best taught the next
        trainer, unlabeled_data, soft_teacher = _student(args, config, store, unlabeled, teacher_path, strategy,
                                                         reopen=not taught_on)
        if not trainer.state.finished and trainer.state.epoch < config.max_epochs:
            if soft_teacher is not None and use_labeled:
                labeled_data = None  # the last iteration's distributions are freed before the new ones load
                labeled_data = build_labeled(labeled, store, augmented, soft_teacher)
            make_batch = mixed_batch(labeled_data, unlabeled_data, trainer.mean, trainer.std, args.batch_size,
                                     args.ratio, args.sigma, args.unlabeled_weight, args.seed + iteration,
                                     args.unvoiced_weight, args.soft_targets)
            training_started = training_started or time.monotonic()
            state = trainer.fit(make_batch, val_data)
            if not (state.finished or state.epoch >= config.max_epochs):
                return 0  # time budget: resume later
        summary_rows.append({"iteration": iteration, "teacher": str(teacher_path),
                             "best_val_OA": round(trainer.state.best_oa, 4), "best_epoch": trainer.state.best_epoch,
                             "bundle": str(trainer.best_path)})
        write_text_atomic(Path(args.run_dir) / "iterations.csv", csv_text(summary_rows, list(summary_rows[0])))
        if not args.quiet:
            print(f"iteration {iteration}: best validation OA {trainer.state.best_oa:.4f} -> {trainer.best_path}",
                  file=sys.stderr)
        teacher_path = trainer.best_path
    copy_output(teacher_path, args.output)
    return 0


def _iteration_dir(args: argparse.Namespace, iteration: int) -> Path:
    """Where an iteration's student trains (``RUN_DIR/iterN``)."""
    return Path(args.run_dir) / f"iter{iteration}"


def _iteration_config(args: argparse.Namespace, iteration: int, teacher_path: Path, n_unlabeled: int,
                      training_started: float | None) -> TrainConfig | None:
    """An iteration's training options; None when the time budget (per call, as the teacher's) is spent."""
    config = train_config(args, role="student", setup=args.setup, iteration=iteration,
                          teacher=str(teacher_path), unlabeled_files=n_unlabeled, k=args.k,
                          ratio=f"{args.ratio[0]}:{args.ratio[1]}", unlabeled_weight=args.unlabeled_weight,
                          original_rate_quirk=args.original_rate_quirk, pseudo_voicing=args.pseudo_voicing,
                          **({"soft_targets": args.soft_targets, "init": args.init} if args.soft_targets
                             or args.init not in ("teacher", "scratch") else {}))
    config.run_dir = _iteration_dir(args, iteration)
    if args.max_minutes is not None:
        elapsed = 0.0 if training_started is None else (time.monotonic() - training_started) / 60.0
        config.max_minutes = args.max_minutes - elapsed
        if config.max_minutes <= 0:
            if not args.quiet:
                print(f"time budget of {args.max_minutes:g} min reached before iteration {iteration}; "
                      "continue with --resume", file=sys.stderr)
            return None
    return config


def _student(args: argparse.Namespace, config: TrainConfig, store: StudentData, unlabeled: list,
             teacher_path: Path, strategy, reopen: bool = True) -> tuple[Trainer, FrameData]:
    """The iteration's pseudo-labeled data and its student (resumed if the iteration was started; ``reopen``:
    see :meth:`Trainer.resume`)."""
    teacher = load_teacher(teacher_path)
    teacher_digest = file_digest(teacher_path)
    unlabeled_data = build_unlabeled(unlabeled, store, teacher, teacher_digest, args.setup,
                                     soft=bool(args.soft_targets))
    model_args = teacher.bundle.model_args
    if args.filters or args.lstm_units:
        from vocal_melody.model import model_config  # imports TensorFlow

        model_args = model_config(tuple(args.filters or model_args["filters"]),
                                  args.lstm_units or model_args["lstm_units"])
    init = _init_weights(args, teacher.bundle, model_args)
    trainer = Trainer(model_args, config, teacher.bundle.mean, teacher.bundle.std, strategy, init)
    if (config.run_dir / "last.npz").exists():
        trainer.resume(reopen=reopen)
    soft_teacher = SoftTeacher(teacher, teacher_digest, args.setup) if args.soft_targets else None
    return trainer, unlabeled_data, soft_teacher


def _init_weights(args: argparse.Namespace, teacher, model_args: dict) -> list | None:
    """The student's first weights: the teacher's (when it has the student's widths), none, or ``--init``'s bundle."""
    if args.init == "scratch":
        return None
    if args.init == "teacher":
        return teacher.weights if model_args == teacher.model_args else None
    return read_bundle(args.init).weights  # its widths and normalisation: checked by check_options


def _check_init_bundle(args: argparse.Namespace) -> None:
    """An ``--init`` bundle must have the student's widths and the teacher's normalisation (checked before any
    pseudo label is computed)."""
    if not Path(args.init).is_file():
        raise MelodyError(f"--init {args.init}: no such bundle (teacher, scratch or a weights bundle .npz)")
    bundle, teacher = read_bundle(args.init), read_bundle(args.teacher)
    student = {"filters": list(args.filters or teacher.model_args["filters"]),
               "lstm_units": args.lstm_units or teacher.model_args["lstm_units"]}
    if bundle.model_args != student:
        raise MelodyError(f"--init {args.init} is a different model {bundle.model_args}; the student is {student}")
    if not (np.array_equal(bundle.mean, teacher.mean) and np.array_equal(bundle.std, teacher.std)):
        raise MelodyError(f"--init {args.init} was trained on other normalisation statistics than the teacher's "
                          f"{args.teacher}; the student inputs are normalised by the teacher's")



def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(prog=program_name("train_student.py"), description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="teacher weights bundle (.npz)")
    parser.add_argument("--setup", choices=sorted(SETUPS), default="ns",
                        help="bts: Basic Teacher-Student, nts: Noisy Teacher-Student, ns: Noisy Student")
    parser.add_argument("--iterations", type=positive_int, default=1,
                        help="the student of iteration i teaches iteration i+1")
    parser.add_argument("--labeled", nargs="+",
                        help="manifests (their --train-split) or folders of labeled audio, used together")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--val", nargs="+",
                        help="validation manifests or folders, scored together (default: --labeled's val split; "
                             "required when --labeled has a folder)")
    parser.add_argument("--val-split", default="val")
    parser.add_argument("--label-format", default="f0", choices=["f0", "mir1k", "ikala"])
    parser.add_argument("--unlabeled", nargs="+", help="folders or files of unlabeled audio (any format)")
    parser.add_argument("--unlabeled-manifest", nargs="+", help="manifests whose audio is used without labels")
    parser.add_argument("--unlabeled-split", default="train")
    parser.add_argument("--shard", type=parse_shard, default=(0, 1), help="k/N: use every N-th unlabeled file")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="compute each iteration's pseudo labels and augmented views on a Ray cluster "
                             "(ADDRESS, or alone: a local one) into --cache-dir, which every node must see")
    parser.add_argument("--prepare-only", action="store_true",
                        help="only compute pseudo labels and augmented features (for --shard on a cluster)")
    parser.add_argument("--export", metavar="DIR",
                        help="write this iteration's views, labels and pseudo labels as a training folder "
                             "and stop (for a machine without TensorFlow)")
    parser.add_argument("--data", metavar="DIR",
                        help="train one iteration on a training folder made by --export (works with "
                             "KERAS_BACKEND=jax)")
    parser.add_argument("--ratio", type=parse_ratio, default=(1, 1), help="labeled:unlabeled windows per batch")
    parser.add_argument("--unlabeled-weight", type=number(0.0, 100.0, low_open=True), default=1.0,
                        help="loss weight of pseudo-labeled windows")
    parser.add_argument("--pseudo-voicing", type=voicing_rule, default="argmax", metavar="RULE",
                        help="voicing of the pseudo labels: argmax (the teacher's, the paper's rule), tuned (the "
                             "threshold stored in the teacher's bundle; argmax if it has none) or a threshold P: "
                             "voiced where the teacher's 1 - p(no voice) >= P")
    parser.add_argument("--k", type=positive_int, default=1, help="augmentation chains per track")
    parser.add_argument("--original-rate-quirk", action="store_true",
                        help="augment as the original did (sox told 8 kHz audio is 44.1 kHz)")
    parser.add_argument("--init", default="teacher", metavar="teacher|scratch|BUNDLE",
                        help="start the student from the teacher's weights (default), from scratch, or from a "
                             "bundle of the student's widths (e.g. a shipped capacity, to distil it further)")
    parser.add_argument("--soft-targets", type=number(0.0, 1.0), default=0.0, metavar="W",
                        help="distillation: each frame's target is W x the teacher's output distribution + (1 - W) "
                             "x the label's (ground truth or pseudo label); 0 (default): labels alone")
    parser.add_argument("--filters", type=filters_list, default=None, help="student width (default: the teacher's)")
    parser.add_argument("--lstm-units", type=positive_int, default=None)
    parser.add_argument("--capacity", choices=["full", "small", "tiny"], default=None,
                        help="student widths of a model capacity (vocal_melody.model.CAPACITIES), instead of "
                             "--filters and --lstm-units: a smaller student of the teacher is its distillation")
    add_training_options(parser)
    for action in parser._actions:  # --export writes a folder and trains nothing
        if action.dest == "run_dir":
            action.required = False
    return parser


def check_options(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, refused before any run folder is made; sets a capacity's widths."""
    if not Path(args.teacher).exists():
        raise MelodyError(f"teacher bundle {args.teacher} not found")
    if Path(args.teacher).is_dir():
        raise MelodyError(f"teacher bundle {args.teacher} is a folder, expected a .npz weights bundle")
    if args.data and (args.export or args.prepare_only or args.labeled or args.unlabeled or args.unlabeled_manifest):
        raise MelodyError("--data trains on a training folder alone: leave out --labeled, --unlabeled, "
                          "--unlabeled-manifest, --export and --prepare-only")
    if args.data and args.soft_targets:
        raise MelodyError("--soft-targets needs the teacher's distributions, which a training folder does not hold: "
                          "train from --labeled and --unlabeled")
    if args.data and args.iterations > 1:
        raise MelodyError("--data holds one teacher's pseudo labels: one iteration (export the next "
                          "iteration's folder with the new teacher)")
    if args.data:  # a broken teacher or folder fails before any run folder is made
        read_bundle(args.teacher)
        training_folder_info(Path(args.data), Path(args.teacher))
    if not args.data and not args.prepare_only and not (args.val or args.labeled):
        raise MelodyError("validation data needed: give --labeled (its val split) or --val")
    if args.capacity and (args.filters or args.lstm_units):
        raise MelodyError("--capacity sets the student's widths: leave out --filters and --lstm-units")
    if args.capacity:
        from vocal_melody.model import CAPACITIES  # imports TensorFlow

        filters, args.lstm_units = CAPACITIES[args.capacity]
        args.filters = list(filters)
    if args.init not in ("teacher", "scratch"):
        _check_init_bundle(args)
    if args.freeze_backbone and (args.init != "teacher" or args.filters or args.lstm_units):
        raise MelodyError("--freeze-backbone keeps the teacher's ResNet blocks: leave out --init, "
                          "--filters and --lstm-units")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    check_options(args)
    if args.export:
        if args.prepare_only or args.resume or args.iterations > 1:
            raise MelodyError("--export writes one iteration's training folder: leave out --prepare-only, "
                              "--resume and --iterations")
        prepare_environment(args)
        return run_iterations(args)
    if args.prepare_only:  # fills the cache only: no run folder
        prepare_environment(args)
        return run_iterations(args)
    if not args.run_dir:
        raise MelodyError("--run-dir is required (the folder for checkpoints, best bundle and log)")
    ensure_output_dir(args.run_dir)
    started = (Path(args.run_dir) / "iter1" / "last.npz").exists()
    if started and not args.resume and not args.prepare_only:
        raise MelodyError(f"{args.run_dir} already holds a run: pass --resume to continue it, "
                          "or choose another --run-dir")
    if args.resume and not started:
        raise MelodyError(f"nothing to resume: {Path(args.run_dir) / 'iter1' / 'last.npz'} does not exist")
    check_output(args)
    prepare_environment(args)
    if args.data:
        return train_from_folder(args)
    return run_iterations(args)


def command() -> None:
    """The ``vocal-melody-train-student`` console command."""
    run_cli(main)
