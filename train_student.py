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

Each iteration: hard pseudo labels (the teacher's argmax per frame) are
computed once and cached; the student is trained on batches mixing labeled
windows (cross-entropy with the labels) and unlabeled windows (cross-entropy
with the pseudo labels, weighted by ``--unlabeled-weight``) in the ratio
``--ratio``; the best student on validation OA becomes the teacher of the
next iteration. ``RUN_DIR/iterN/best.npz`` and ``RUN_DIR/iterations.csv``
keep every iteration. Augmented features are precomputed per track (``--k``
chains per track; 1 as in the original) and cached.

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
import csv
import io
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from melody.errors import MelodyError, OneLineParser, run_cli
from melody.argtypes import number, positive_int
from melody.trainer_cli import (add_training_options, check_output, filters_list, labeled_tracks, prepare_environment,
                                train_config)

SETUPS = {"bts": (False, False), "nts": (True, True), "ns": (False, True)}
"""setup -> (teacher sees augmented audio, student sees augmented audio)."""


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


# ----------------------------------------------------------------------------- data of an iteration

class StudentData:
    """Features (clean or augmented) and pseudo labels of one iteration, all cached."""

    def __init__(self, cache_dir: Path, k: int, seed: int, original_rate_quirk: bool, progress: bool) -> None:
        from melody.cache import ArrayCache
        from melody.datasets import FeatureCache

        self.features = FeatureCache(cache_dir / "features")
        self.pseudo = ArrayCache(cache_dir / "pseudo")
        self.k, self.seed, self.quirk, self.progress = k, seed, original_rate_quirk, progress

    def chains(self, track) -> list[tuple[str, list]]:
        """``(description, randAudioAugment chain)`` of each augmented view of a track, ``--k`` of them."""
        import augment
        from melody.cache import file_digest

        track_id = file_digest(track.audio)
        chains = [augment.chain_for(track_id, self.seed, index) for index in range(self.k)]
        return [(augment.describe(chain) + (" quirk" if self.quirk else ""), chain) for chain in chains]

    def augmented_audio(self, samples: np.ndarray, chain: list) -> np.ndarray:
        """8 kHz samples through one chain, as the student hears them."""
        import augment
        import featureExtraction as features

        return augment.apply_chain(samples, features.SAMPLE_RATE, chain, self.quirk)

    def variants(self, track, augmented: bool) -> list[tuple[str, np.ndarray]]:
        """``(augmentation description, spectrogram)`` of each view of a track the student trains on."""
        if not augmented:
            return [("", self.features.spectrogram(track.audio))]
        import featureExtraction as features

        views = []
        for description, chain in self.chains(track):
            def compute(path, chain=chain):
                return self.augmented_audio(features.load_audio(path), chain)

            views.append((description, self.features.spectrogram(track.audio, description, compute)))
        return views

    def pseudo_labels(self, teacher, teacher_digest: str, track, description: str, spec: np.ndarray) -> np.ndarray:
        """The teacher's argmax class per frame for one view of a track, cached by teacher and view."""
        from melody.cache import cache_key

        key = cache_key("pseudo", teacher_digest, self.features.key(track.audio, description))
        entry = self.pseudo.load(key)
        if entry is not None:
            return entry["classes"]
        activations = teacher.activations_from_spectrogram(spec)
        classes = np.argmax(activations, axis=1).astype(np.int16)
        self.pseudo.save(key, {"classes": classes})
        return classes


def build_unlabeled(tracks, store: StudentData, teacher, teacher_digest: str, setup: str):
    """FrameData of the unlabeled views with pseudo labels as classes."""
    from tqdm import tqdm

    from melody.training import FrameData

    teacher_augmented, student_augmented = SETUPS[setup]
    views, specs, classes = [], [], []
    for track in tqdm(tracks, desc="pseudo labels", unit="track", disable=not store.progress, file=sys.stderr):
        clean_labels = None
        if not teacher_augmented:
            clean_spec = store.features.spectrogram(track.audio)
            clean_labels = store.pseudo_labels(teacher, teacher_digest, track, "", clean_spec)
        for description, spec in store.variants(track, student_augmented):
            labels = clean_labels if clean_labels is not None else store.pseudo_labels(
                teacher, teacher_digest, track, description, spec)
            views.append(track)
            specs.append(spec)
            classes.append(labels[:len(spec)])
    return FrameData(views, specs, classes)


def build_labeled(tracks, store: StudentData, augmented: bool):
    """FrameData of the labeled views (augmented for the noisy setups' students)."""
    from tqdm import tqdm

    from melody.datasets import frame_classes
    from melody.training import FrameData

    views, specs, classes = [], [], []
    for track in tqdm(tracks, desc="labeled features", unit="track", disable=not store.progress, file=sys.stderr):
        for _, spec in store.variants(track, augmented):
            views.append(track)
            specs.append(spec)
            classes.append(frame_classes(track.f0, len(spec)))
    return FrameData(views, specs, classes)


def mixed_batch(labeled, unlabeled, mean, std, batch_size: int, ratio: tuple[int, int], sigma: float,
                unlabeled_weight: float, seed: int, unvoiced_weight: float = 1.0):
    """``make_batch``: labeled and pseudo-labeled windows in one batch, weighted per sample."""
    import featureExtraction as features
    from melody.labels import target_distributions
    from melody.training import frame_weights, sample_windows

    n_labeled = int(round(batch_size * ratio[0] / (ratio[0] + ratio[1]))) if labeled is not None else 0
    n_unlabeled = batch_size - n_labeled

    def make_batch(epoch: int, step: int):
        rng = np.random.default_rng([seed, epoch, step])
        xs, ys = [], []
        if n_labeled:
            x, y = sample_windows(labeled, n_labeled, rng)
            xs.append(x)
            ys.append(y)
        x, y = sample_windows(unlabeled, n_unlabeled, rng)
        xs.append(x)
        ys.append(y)
        window_weights = np.concatenate([np.ones(n_labeled, np.float32),
                                         np.full(n_unlabeled, unlabeled_weight, np.float32)])
        classes = np.concatenate(ys)
        weights = frame_weights(classes, window_weights, unvoiced_weight)
        if weights is None:  # Keras needs the same inputs on every step
            weights = np.ones(classes.shape, np.float32)
        inputs = features.normalize(np.concatenate(xs), mean, std)[..., None]
        return inputs, target_distributions(classes, sigma), weights

    return make_batch


# ----------------------------------------------------------------------------- training folders

FOLDER_FORMAT = "melody-training-folder/1"
FOLDER_SPLITS = ("train", "pseudo", "val")
"""Labeled views, pseudo-labeled views, clean validation tracks."""


def view_audio(track, store: StudentData, augmented: bool) -> list[np.ndarray]:
    """8 kHz samples of each view :meth:`StudentData.variants` trains on (same chains, same order)."""
    import featureExtraction as features

    samples = features.load_audio(track.audio)
    if not augmented:
        return [samples]
    return [store.augmented_audio(samples, chain) for _, chain in store.chains(track)]


def export_folder(args: argparse.Namespace, store: StudentData, labeled, unlabeled, val) -> None:
    """Write one iteration's training data as a folder that ``--data`` trains on (no TensorFlow needed there)."""
    import json

    from tqdm import tqdm

    import featureExtraction as features
    from melody.cache import file_digest
    from melody.datasets import frame_classes
    from melody.fileio import atomic_path, write_sound_atomic, write_text_atomic
    from melody.labels import class_to_f0
    from melody.writers import format_label

    folder = Path(args.export)
    if (folder / "manifest.csv").exists():
        raise MelodyError(f"{folder} already holds a training folder; choose a new --export folder")
    if folder.is_dir() and any(p.name not in ("audio", "labels", "export.json") for p in folder.iterdir()):
        raise MelodyError(f"--export {folder} holds other files; choose a new or empty folder")
    teacher_path = Path(args.teacher)
    teacher = _teacher(teacher_path)
    digest = file_digest(teacher_path)
    # pseudo labels first: a bad unlabeled file fails before the folder is made
    unlabeled_data = build_unlabeled(unlabeled, store, teacher, digest, args.setup)
    del teacher
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(exist_ok=True)
    student_augmented = SETUPS[args.setup][1]
    rows, seconds = [], {split: 0.0 for split in FOLDER_SPLITS}

    def write(split: str, source, samples: np.ndarray, f0: np.ndarray, weight: float) -> None:
        item = f"{split}_{len(rows):05d}"
        n_frames = features.n_frames_for(samples.size)
        f0 = np.pad(f0, (0, max(0, n_frames - len(f0))))[:n_frames]
        write_sound_atomic(folder / "audio" / f"{item}.flac", np.clip(samples, -1.0, 1.0), features.SAMPLE_RATE,
                           subtype="PCM_16")
        write_text_atomic(folder / "labels" / f"{item}.f0.txt", format_label(f0))
        rows.append({"id": item, "audio": f"audio/{item}.flac", "label": f"labels/{item}.f0.txt", "split": split,
                     "weight": weight, "source": str(source.audio)})
        seconds[split] += samples.size / features.SAMPLE_RATE

    progress = not args.quiet
    view = 0
    for track in tqdm(unlabeled, desc="export pseudo-labeled", unit="track", disable=not progress, file=sys.stderr):
        for samples in view_audio(track, store, student_augmented):
            write("pseudo", track, samples, class_to_f0(unlabeled_data.classes[view]), args.unlabeled_weight)
            view += 1
    for track in tqdm(labeled, desc="export labeled", unit="track", disable=not progress, file=sys.stderr):
        for samples in view_audio(track, store, student_augmented):
            write("train", track, samples, class_to_f0(frame_classes(track.f0, features.n_frames_for(samples.size))),
                  1.0)
    for track in tqdm(val, desc="export validation", unit="track", disable=not progress, file=sys.stderr):
        write("val", track, features.load_audio(track.audio), track.f0, 1.0)
    info = {"format": FOLDER_FORMAT, "teacher": str(teacher_path), "teacher_sha1": digest, "setup": args.setup,
            "k": args.k, "seed": args.seed, "original_rate_quirk": args.original_rate_quirk,
            "unlabeled_weight": args.unlabeled_weight,
            "minutes": {split: round(value / 60.0, 2) for split, value in seconds.items()},
            "sources": {"labeled": str(args.labeled), "unlabeled": [str(u) for u in args.unlabeled or []],
                        "unlabeled_manifest": [str(u) for u in args.unlabeled_manifest or []]}}
    write_text_atomic(folder / "export.json", json.dumps(info, indent=1) + "\n")
    import csv as csv_module

    with atomic_path(folder / "manifest.csv") as temp:  # last: a folder without it is unfinished
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv_module.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    if progress:
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2 ** 20
        print(f"exported {len(rows)} items ({', '.join(f'{k} {v} min' for k, v in info['minutes'].items())}; "
              f"{size:.1f} MiB) to {folder}", file=sys.stderr)


def training_folder_info(folder: Path, teacher_path: Path) -> dict:
    """The export record of a training folder, checked to be one and to belong to the teacher."""
    import json

    from melody.cache import file_digest

    info_path = folder / "export.json"
    if not (folder / "manifest.csv").is_file() or not info_path.is_file():
        raise MelodyError(f"{folder}: not a training folder (needs manifest.csv and export.json from --export)")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MelodyError(f"{info_path}: unreadable ({type(error).__name__})") from None
    if info.get("format") != FOLDER_FORMAT:
        raise MelodyError(f"{info_path}: format {info.get('format')!r}, expected {FOLDER_FORMAT!r}")
    if file_digest(teacher_path) != info.get("teacher_sha1"):
        raise MelodyError(f"{folder} holds the pseudo labels of another teacher ({info.get('teacher')}); "
                          f"give that bundle as --teacher, or export again with {teacher_path}")
    return info


def read_training_folder(folder: Path, teacher_path: Path) -> tuple[dict, dict[str, list]]:
    """The export record and the tracks of each split of a training folder."""
    from melody.datasets import read_manifest

    info = training_folder_info(folder, teacher_path)
    tracks = {split: read_manifest(folder / "manifest.csv", splits=(split,)) for split in FOLDER_SPLITS}
    if not tracks["val"]:
        raise MelodyError(f"{folder}: no validation tracks")
    if not tracks["pseudo"]:
        raise MelodyError(f"{folder}: no pseudo-labeled tracks")
    return info, tracks


def train_from_folder(args: argparse.Namespace) -> int:
    """One student iteration from a training folder: its audio is already augmented as the setup wants."""
    from melody.datasets import FeatureCache
    from melody.training import Trainer, load_frame_data, make_strategy

    folder, teacher_path = Path(args.data), Path(args.teacher)
    info, tracks = read_training_folder(folder, teacher_path)
    cache = FeatureCache(Path(args.cache_dir) / "features")
    progress = not args.quiet
    val_data = load_frame_data(tracks["val"], cache, progress, desc="val features")
    unlabeled_data = load_frame_data(tracks["pseudo"], cache, progress, desc="pseudo-labeled features")
    labeled_data = load_frame_data(tracks["train"], cache, progress, desc="labeled features") \
        if tracks["train"] and args.ratio[0] else None
    from melody.bundle import read_bundle

    teacher = read_bundle(teacher_path)
    config = train_config(args, role="student", setup=info["setup"], iteration=1, teacher=str(teacher_path),
                          data=str(folder), unlabeled_files=len(tracks["pseudo"]), k=info["k"],
                          ratio=f"{args.ratio[0]}:{args.ratio[1]}", unlabeled_weight=args.unlabeled_weight,
                          original_rate_quirk=info["original_rate_quirk"])
    config.run_dir = Path(args.run_dir) / "iter1"
    strategy = make_strategy(args.gpu_index, args.cpu_devices)
    init = teacher.weights if args.init == "teacher" else None
    trainer = Trainer(teacher.model_args, config, teacher.mean, teacher.std, strategy, init)
    if (config.run_dir / "last.npz").exists():
        trainer.resume()
    if progress:
        print(f"training on {folder}: {labeled_data.minutes if labeled_data else 0:.1f} min labeled, "
              f"{unlabeled_data.minutes:.1f} min pseudo-labeled, validating on {len(tracks['val'])} tracks "
              f"({val_data.minutes:.1f} min); Keras backend {_backend()}", file=sys.stderr)
    make_batch = mixed_batch(labeled_data, unlabeled_data, trainer.mean, trainer.std, args.batch_size, args.ratio,
                             args.sigma, args.unlabeled_weight, args.seed + 1, args.unvoiced_weight)
    trainer.fit(make_batch, val_data)
    if args.output and trainer.best_path.exists():
        import shutil

        from melody.fileio import atomic_path

        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.output) as temp:
            shutil.copyfile(trainer.best_path, temp)
    return 0


def _prepare_on_ray(args: argparse.Namespace, unlabeled, teacher_path: Path) -> None:
    """With ``--ray``: the Ray workers fill the cache that the local pseudo-labelling then reads."""
    if args.ray is None:
        return
    from melody.ray_batch import prepare_on_ray

    prepare_on_ray(unlabeled, teacher_path, args.cache_dir, args.k, args.seed, args.original_rate_quirk, args.setup,
                   args.ray, progress=not args.quiet)


def _backend() -> str:
    from melody.quiet import keras_backend

    return keras_backend()


# ----------------------------------------------------------------------------- iterations

def _teacher(path: Path):
    from melodyExtraction_NS import MelodyExtractor

    return MelodyExtractor(path)


def run_iterations(args: argparse.Namespace) -> int:
    from melody.cache import file_digest
    from melody.datasets import read_manifest, unlabeled_folder
    from melody.fileio import write_text_atomic
    from melody.training import Trainer, load_frame_data, make_strategy

    from melody.bundle import read_bundle

    run_dir = Path(args.run_dir) if args.run_dir else None  # None with --export
    read_bundle(args.teacher)  # a broken teacher fails now, not after minutes of feature extraction
    check_output(args)
    store = StudentData(Path(args.cache_dir), args.k, args.seed, args.original_rate_quirk, not args.quiet)
    unlabeled = unlabeled_folder(args.unlabeled or [], shard=args.shard) if args.unlabeled else []
    for manifest in args.unlabeled_manifest or []:  # synthesized mixes whose labels are withheld
        tracks = read_manifest(manifest, splits=(args.unlabeled_split,), with_labels=False)
        unlabeled += [t for i, t in enumerate(tracks) if i % args.shard[1] == args.shard[0]]
    if not unlabeled:
        if args.shard[1] > 1 and (args.unlabeled or args.unlabeled_manifest):
            raise MelodyError(f"shard {args.shard[0]}/{args.shard[1]} holds no unlabeled file: there are fewer "
                              f"files than shards; use fewer shards")
        raise MelodyError("no unlabeled audio: give --unlabeled folders or --unlabeled-manifest")
    teacher_path = Path(args.teacher)
    student_augmented = SETUPS[args.setup][1]

    if args.export:
        labeled = labeled_tracks(args.labeled, args.train_split, args.label_format) if args.labeled else []
        val = labeled_tracks(args.val or args.labeled, args.val_split, args.label_format)
        export_folder(args, store, labeled if args.ratio[0] else [], unlabeled, val)
        return 0
    if args.prepare_only:
        _prepare_on_ray(args, unlabeled, teacher_path)
        teacher = _teacher(teacher_path)
        build_unlabeled(unlabeled, store, teacher, file_digest(teacher_path), args.setup)
        if not args.quiet:
            print(f"prepared pseudo labels for {len(unlabeled)} files (shard {args.shard[0]}/{args.shard[1]})",
                  file=sys.stderr)
        return 0

    labeled = labeled_tracks(args.labeled, args.train_split, args.label_format) if args.labeled else []
    val = labeled_tracks(args.val or args.labeled, args.val_split, args.label_format)
    val_data = load_frame_data(val, store.features, progress=not args.quiet, desc="val features")
    labeled_data = build_labeled(labeled, store, student_augmented) if labeled and args.ratio[0] else None
    summary_rows = []
    training_started = None  # the budget counts training, not the preparation before it
    strategy = make_strategy(args.gpu_index, args.cpu_devices)
    for iteration in range(1, args.iterations + 1):
        iteration_dir = run_dir / f"iter{iteration}"
        config = train_config(args, role="student", setup=args.setup, iteration=iteration,
                              teacher=str(teacher_path), unlabeled_files=len(unlabeled), k=args.k,
                              ratio=f"{args.ratio[0]}:{args.ratio[1]}", unlabeled_weight=args.unlabeled_weight,
                              original_rate_quirk=args.original_rate_quirk)
        config.run_dir = iteration_dir
        if args.max_minutes is not None:  # the budget is per call, as the teacher's: rerun to go on
            elapsed = 0.0 if training_started is None else (time.monotonic() - training_started) / 60.0
            config.max_minutes = args.max_minutes - elapsed
            if config.max_minutes <= 0:
                if not args.quiet:
                    print(f"time budget of {args.max_minutes:g} min reached before iteration {iteration}; "
                          "continue with --resume", file=sys.stderr)
                return 0
        _prepare_on_ray(args, unlabeled, teacher_path)
        teacher = _teacher(teacher_path)
        unlabeled_data = build_unlabeled(unlabeled, store, teacher, file_digest(teacher_path), args.setup)
        init = teacher.bundle.weights if args.init == "teacher" else None
        model_args = teacher.bundle.model_args
        if args.filters or args.lstm_units:
            from model import model_config

            model_args = model_config(tuple(args.filters or model_args["filters"]),
                                      args.lstm_units or model_args["lstm_units"])
            init = None if model_args != teacher.bundle.model_args else init
        trainer = Trainer(model_args, config, teacher.bundle.mean, teacher.bundle.std, strategy, init)
        del teacher
        if (iteration_dir / "last.npz").exists():
            trainer.resume()
        if not trainer.state.finished and trainer.state.epoch < config.max_epochs:
            make_batch = mixed_batch(labeled_data, unlabeled_data, trainer.mean, trainer.std, args.batch_size,
                                     args.ratio, args.sigma, args.unlabeled_weight, args.seed + iteration,
                                     args.unvoiced_weight)
            training_started = training_started or time.monotonic()
            state = trainer.fit(make_batch, val_data)
            if not (state.finished or state.epoch >= config.max_epochs):
                return 0  # time budget: resume later
        summary_rows.append({"iteration": iteration, "teacher": str(teacher_path),
                             "best_val_OA": round(trainer.state.best_oa, 4), "best_epoch": trainer.state.best_epoch,
                             "bundle": str(trainer.best_path)})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(summary_rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(summary_rows)
        write_text_atomic(run_dir / "iterations.csv", buffer.getvalue())
        if not args.quiet:
            print(f"iteration {iteration}: best validation OA {trainer.state.best_oa:.4f} -> {trainer.best_path}",
                  file=sys.stderr)
        teacher_path = trainer.best_path
    if args.output:
        import shutil

        from melody.fileio import atomic_path

        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.output) as temp:
            shutil.copyfile(teacher_path, temp)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(prog="train_student.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="teacher weights bundle (.npz)")
    parser.add_argument("--setup", choices=sorted(SETUPS), default="ns",
                        help="bts: Basic Teacher-Student, nts: Noisy Teacher-Student, ns: Noisy Student")
    parser.add_argument("--iterations", type=positive_int, default=1,
                        help="the student of iteration i teaches iteration i+1")
    parser.add_argument("--labeled", help="manifest.csv or folder of labeled audio")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--val", help="validation manifest or folder (default: --labeled's val split)")
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
    parser.add_argument("--k", type=positive_int, default=1, help="augmentation chains per track")
    parser.add_argument("--original-rate-quirk", action="store_true",
                        help="augment as the original did (sox told 8 kHz audio is 44.1 kHz)")
    parser.add_argument("--init", choices=["teacher", "scratch"], default="teacher",
                        help="start the student from the teacher's weights (default) or from scratch")
    parser.add_argument("--filters", type=filters_list, default=None, help="student width (default: the teacher's)")
    parser.add_argument("--lstm-units", type=positive_int, default=None)
    add_training_options(parser)
    for action in parser._actions:  # --export writes a folder and trains nothing
        if action.dest == "run_dir":
            action.required = False
    parser.set_defaults(cache_dir="cache")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not Path(args.teacher).exists():
        raise MelodyError(f"teacher bundle {args.teacher} not found")
    if args.data and (args.export or args.prepare_only or args.labeled or args.unlabeled or args.unlabeled_manifest):
        raise MelodyError("--data trains on a training folder alone: leave out --labeled, --unlabeled, "
                          "--unlabeled-manifest, --export and --prepare-only")
    if args.data and args.iterations > 1:
        raise MelodyError("--data holds one teacher's pseudo labels: one iteration (export the next "
                          "iteration's folder with the new teacher)")
    if args.data:  # a broken teacher or folder fails before any run folder is made
        from melody.bundle import read_bundle

        read_bundle(args.teacher)
        training_folder_info(Path(args.data), Path(args.teacher))
    if not args.data and not args.prepare_only and not (args.val or args.labeled):
        raise MelodyError("validation data needed: give --labeled (its val split) or --val")
    if Path(args.teacher).is_dir():
        raise MelodyError(f"teacher bundle {args.teacher} is a folder, expected a .npz weights bundle")
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
    from melody.fileio import ensure_output_dir

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


if __name__ == "__main__":
    run_cli(main)
