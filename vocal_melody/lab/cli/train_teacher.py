"""Supervised training of the teacher CRNN on labeled audio.

    python train_teacher.py --train data/synth/manifest.csv --run-dir runs/teacher \\
        --mixed-precision bf16 --max-minutes 120          # stop after 2 h; rerun with --resume

Cross-entropy on Gaussian-blurred targets (``--sigma`` bins; 0 = one-hot),
Adam, L2 as in the model. After every epoch (``--steps-per-epoch``
batches) the model is scored with mir_eval on whole validation tracks;
``RUN_DIR/best.npz`` is the bundle with the best validation OA under its
tuned voicing threshold, the CLI's default decoding (load it
with ``melodyExtraction_NS.py -w``), ``RUN_DIR/last.npz`` the checkpoint
that ``--resume`` continues from, ``RUN_DIR/log.csv`` the per-epoch log.

Labeled data: ``synth_testset.py compose`` manifests (``--train-split``
and ``--val-split`` pick their splits; a manifest without the split adds
nothing to it) or folders of audio with labels matched by name
(``--label-format f0|mir1k|ikala``); a folder has no splits, so it needs
``--val`` with held-out tracks.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from vocal_melody import features
from vocal_melody.bundle import read_bundle
from vocal_melody.cli.argtypes import positive_int
from vocal_melody.cli.common import OneLineParser, program_name, run_cli
from vocal_melody.lab.cli.training_options import (add_training_options, check_run_dir, filters_list, finish,
                                               labeled_tracks, prepare_environment, train_config,
                                               validation_sources)
from vocal_melody.lab.corpora.datasets import FeatureCache
from vocal_melody.errors import MelodyError
from vocal_melody.lab.training.distribute import make_strategy
from vocal_melody.lab.training.frames import load_frame_data, normalization_stats, supervised_batch
from vocal_melody.lab.training.loop import Trainer

def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(prog=program_name("train_teacher.py"), description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, nargs="+",
                        help="manifests or folders of labeled audio (several are trained on together)")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--val", nargs="+", help="manifests or folders for validation (default: the val split of "
                        "--train's manifests; required when --train has a folder)")
    parser.add_argument("--val-split", default="val")
    parser.add_argument("--label-format", default="f0", choices=["f0", "mir1k", "ikala"],
                        help="label format of folder corpora")
    parser.add_argument("--filters", type=filters_list, default=None,
                        help="four filter counts (default: the paper's 64,128,192,256)")
    parser.add_argument("--lstm-units", type=positive_int, default=None, help="default: the paper's 256")
    parser.add_argument("--no-dropout", action="store_true",
                        help="train without dropout (an ablation; the paper's model has it)")
    parser.add_argument("--init", metavar="BUNDLE",
                        help="start from this bundle's weights and normalisation (e.g. a committed checkpoint, "
                             "to fine-tune on a new corpus), with a fresh training state")
    add_training_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.sigma < 0:
        raise MelodyError(f"--sigma must be >= 0, got {args.sigma}")
    if args.init and args.resume:
        raise MelodyError("--init starts a new run and --resume continues one: give only one")
    if args.freeze_backbone and not (args.init or args.resume):
        raise MelodyError("--freeze-backbone keeps the ResNet blocks of a trained model: give it with --init BUNDLE")
    init_bundle = None
    if args.init:  # checked before the run folder is created
        init_bundle = read_bundle(args.init, expected_features=features.FEATURE_DEFINITION)
    check_run_dir(args)
    prepare_environment(args)
    from vocal_melody.model import PAPER_FILTERS, PAPER_LSTM_UNITS, model_config  # imports TensorFlow

    train = labeled_tracks(args.train, args.train_split, args.label_format)
    val = labeled_tracks(validation_sources(args.val, args.train), args.val_split, args.label_format)
    cache = FeatureCache.under(args.cache_dir)
    train_data = load_frame_data(train, cache, progress=not args.quiet, desc="train features")
    val_data = load_frame_data(val, cache, progress=not args.quiet, desc="val features")
    model_args = model_config(tuple(args.filters or PAPER_FILTERS), args.lstm_units or PAPER_LSTM_UNITS,
                              dropout=not args.no_dropout)
    init_weights = None
    if init_bundle is not None:
        if init_bundle.model_args != model_args:
            raise MelodyError(f"{args.init} is a different model {init_bundle.model_args}; "
                              "pass the same --filters and --lstm-units")
        mean, std, init_weights = init_bundle.mean, init_bundle.std, init_bundle.weights
    else:
        mean, std = normalization_stats(train_data.specs)
    config = train_config(args, role="teacher", train=" ".join(args.train), train_minutes=round(train_data.minutes, 2),
                          val=" ".join(args.val or args.train), val_tracks=len(val), init=args.init)
    strategy = make_strategy(args.gpu_index, args.cpu_devices)
    trainer = Trainer(model_args, config, mean, std, strategy, init_weights)
    if args.resume:
        trainer.resume()
    if not args.quiet:
        kind = "MultiWorkerMirroredStrategy" if trainer.n_workers > 1 else type(strategy).__name__
        devices = f", {strategy.num_replicas_in_sync} devices ({kind})" if strategy else ""
        print(f"training on {len(train)} tracks ({train_data.minutes:.1f} min), validating on {len(val)} "
              f"({val_data.minutes:.1f} min){devices}", file=sys.stderr)
    make_batch = supervised_batch(train_data, trainer.mean, trainer.std, args.batch_size, args.sigma, args.seed,
                                  args.unvoiced_weight)
    trainer.fit(make_batch, val_data)
    finish(args, trainer)
    return 0


def command() -> None:
    """The ``vocal-melody-train-teacher`` console command."""
    run_cli(main)
