"""Command-line pieces shared by ``train_teacher.py`` and ``train_student.py``: options, checks, output copy."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from vocal_melody.cli.argtypes import batch_size, gpu_indices, integer, number, positive_float, positive_int, seed
from vocal_melody.cache import DEFAULT_CACHE_ROOT
from vocal_melody.lab.corpora.datasets import pair_folder, read_manifest
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import atomic_path, ensure_output_dir
from vocal_melody.runtime import configure_runtime
from vocal_melody.lab.training.loop import TrainConfig
from vocal_melody.lab.training.voicing import VAL_MEANS



def filters_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"filters must be comma-separated integers, got {text}") from None
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"give four positive filter counts, got {text}")
    return values


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the teacher and student trainers."""
    parser.add_argument("--run-dir", required=True, help="folder for checkpoints, best bundle and log")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.npz")
    parser.add_argument("--max-minutes", type=positive_float, default=None,
                        help="stop (with a checkpoint) after this many minutes of this call; "
                             "--resume goes on")
    parser.add_argument("--max-epochs", type=positive_int, default=1000)
    parser.add_argument("--steps-per-epoch", type=positive_int, default=250)
    parser.add_argument("--patience", type=positive_int, default=10,
                        help="stop after this many epochs without a better validation OA")
    parser.add_argument("--batch-size", type=batch_size, default=32)
    parser.add_argument("--lr", "--learning-rate", dest="learning_rate", type=positive_float, default=None,
                        help="Adam's learning rate (default 1e-3; with --resume the run's own, unless given)")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                        help="adam (the paper's) or plain sgd (an ablation)")
    parser.add_argument("--sigma", type=number(0.0, 20.0), default=1.0,
                        help="std (in 1/8-semitone bins) of the Gaussian targets; 0 = one-hot")
    parser.add_argument("--unvoiced-weight", type=number(0.0, 100.0, low_open=True), default=1.0,
                        help="loss weight of no-voice frames (1 = the paper's plain cross-entropy; above 1 "
                             "makes a false voice cost more)")
    parser.add_argument("--voicing-loss-weight", type=number(0.0, 100.0), default=0.0,
                        help="weight of an auxiliary voice/no-voice loss on 1 - p(no voice), its two classes "
                             "balanced per batch, as in the authors' JDC model (0 = the paper's plain "
                             "cross-entropy)")
    parser.add_argument("--freeze-backbone", action="store_true",
                        help="train only the BiLSTM and the output layer; the ResNet blocks (and their batch "
                             "statistics) stay as in the starting model and are not back-propagated")
    parser.add_argument("--val-mean", choices=VAL_MEANS, default="tracks",
                        help="validation OA (which ranks epochs and tunes the voicing threshold) as the mean over "
                             "tracks (default, the paper's) or over groups: each --val manifest's mean over its "
                             "tracks, then their mean, so each corpus weighs the same")
    parser.add_argument("--mixed-precision", choices=["bf16", "fp16", "fp32"], default=None,
                        help="bf16 for AMX CPUs and recent GPUs (default: float32)")
    parser.add_argument("-gpu", "--gpu_index", type=gpu_indices, default=None,
                        help="GPU index or indices (0,1 trains on both with MirroredStrategy); CPU when omitted")
    parser.add_argument("--cpu-devices", type=integer(0, 64), default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_ROOT),
                        help="cache folder (features, pseudo labels)")
    parser.add_argument("--tensorboard", action="store_true", help="also log to RUN_DIR/tensorboard")
    parser.add_argument("--no-optimizer-state", action="store_true",
                        help="checkpoints without Adam's moments (3x smaller; resume restarts them)")
    parser.add_argument("--output", help="copy the best bundle here at the end (e.g. weights/teacher.npz)")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's messages")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def prepare_environment(args: argparse.Namespace) -> None:
    """Device selection and TensorFlow verbosity; before Keras is imported (``KERAS_BACKEND=jax`` is kept)."""
    configure_runtime(args.gpu_index, args.verbose)


def labeled_tracks(sources: str | Sequence[str], split: str, label_format: str) -> list:
    """Tracks of a split of one or several manifests, or of folders of audio and labels (all their tracks).

    With several sources, one without that split adds nothing (e.g. a corpus of training items only).
    """
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    tracks = []
    for source in sources:
        path = Path(source)
        tracks += pair_folder(path, fmt=label_format, split=split) if path.is_dir() else \
            read_manifest(path, splits=(split,))
    if not tracks:
        raise MelodyError(f"{', '.join(map(str, sources))}: no tracks in split {split!r}")
    return tracks


def validation_sources(val: Sequence[str] | str | None, train: Sequence[str] | str) -> Sequence[str] | str:
    """``--val``, or else the training sources (their val split validates); a folder has no splits: it needs ``--val``.

    Without this check a folder's tracks would validate the model they train.
    """
    if val:
        return val
    for source in [train] if isinstance(train, (str, os.PathLike)) else train:
        if Path(source).is_dir():
            raise MelodyError(f"{source}: a folder has no validation split (its tracks are all training tracks); "
                              "give held-out tracks with --val")
    return train


def train_config(args: argparse.Namespace, **extra) -> TrainConfig:
    """The training options the command line gave; ``extra`` is recorded in the bundle."""
    return TrainConfig(run_dir=Path(args.run_dir), batch_size=args.batch_size, learning_rate=args.learning_rate,
                       sigma=args.sigma, steps_per_epoch=args.steps_per_epoch, max_epochs=args.max_epochs,
                       patience=args.patience, max_minutes=args.max_minutes, seed=args.seed,
                       mixed_precision=args.mixed_precision, tensorboard=args.tensorboard,
                       progress=not args.quiet, save_optimizer=not args.no_optimizer_state,
                       unvoiced_weight=args.unvoiced_weight,
                       voicing_loss_weight=args.voicing_loss_weight, optimizer=args.optimizer,
                       freeze_backbone=args.freeze_backbone, val_mean=args.val_mean,
                       extra_config=dict(extra, val_mean=args.val_mean))


def check_run_dir(args: argparse.Namespace) -> None:
    """A usable run folder: creatable, and holding a run only when resuming it."""
    ensure_output_dir(args.run_dir)
    last = Path(args.run_dir) / "last.npz"
    if last.exists() and not args.resume:
        raise MelodyError(f"{args.run_dir} already holds a run: pass --resume to continue it, "
                          "or choose another --run-dir")
    if args.resume and not last.exists():
        raise MelodyError(f"nothing to resume: {last} does not exist")
    check_output(args)


def check_output(args: argparse.Namespace) -> None:
    """``--output`` may not be an input nor any existing file: checked before hours of training, not after."""
    if not getattr(args, "output", None):
        return
    target = Path(args.output).resolve()
    inputs = list(getattr(args, "unlabeled_manifest", None) or [])
    for name in ("train", "val", "labeled", "init", "teacher"):
        value = getattr(args, name, None)
        inputs += value if isinstance(value, list) else [value]
    if any(item and Path(item).resolve() == target for item in inputs):
        raise MelodyError(f"--output {args.output} is one of the inputs; choose another file")
    if target.exists():
        raise MelodyError(f"--output {args.output} already exists; choose a new file (nothing is overwritten)")
    if target.parent.exists() and not os.access(target.parent, os.W_OK):
        raise MelodyError(f"--output {args.output}: folder {target.parent} is not writable")


def copy_output(best: Path, output: str | None) -> None:
    """Copy the best bundle to ``--output`` (atomically), if one was asked for."""
    if not output:
        return
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temp:
        shutil.copyfile(best, temp)


def finish(args: argparse.Namespace, trainer) -> None:
    """Copy the best bundle to ``--output`` and say where it is."""
    if trainer.best_path.exists():
        copy_output(trainer.best_path, args.output)
    if not args.quiet:
        state = trainer.state
        print(f"best validation OA {state.best_oa:.4f} at epoch {state.best_epoch}; "
              f"bundle {trainer.best_path}" + (f" (copied to {args.output})" if args.output else ""),
              file=sys.stderr)
