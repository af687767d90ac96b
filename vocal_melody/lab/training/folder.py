"""Training folders: one student iteration's data as files, for a machine without TensorFlow.

``--export DIR`` writes 8 kHz FLAC views (augmented as the setup wants), their labels or pseudo labels,
the clean validation tracks, ``manifest.csv`` (splits train / pseudo / val) and ``export.json`` (with the
teacher's digest); ``--data DIR`` trains on it, also under ``KERAS_BACKEND=jax``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocal_melody import features
from vocal_melody.cache import file_digest
from vocal_melody.lab.corpora.datasets import frame_classes, read_manifest
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import csv_text, write_sound_atomic, write_text_atomic
from vocal_melody.formats.writers import format_label
from vocal_melody.labels import class_to_f0
from vocal_melody.lab.training.student import SETUPS, StudentData, build_unlabeled, load_teacher, view_audio


FOLDER_FORMAT = "melody-training-folder/1"
FOLDER_SPLITS = ("train", "pseudo", "val")
"""Labeled views, pseudo-labeled views, clean validation tracks."""


@dataclass
class ExportSources:
    """What an export was made from, recorded in its ``export.json``."""

    teacher: Path
    setup: str
    labeled: list[str] | None
    unlabeled: list[str]
    unlabeled_manifest: list[str]
    unlabeled_weight: float


class _FolderWriter:
    """Writes items (8 kHz FLAC + f0 label) into a training folder and keeps its manifest rows."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "audio").mkdir(parents=True, exist_ok=True)
        (folder / "labels").mkdir(exist_ok=True)
        self.rows: list[dict] = []
        self.seconds = {split: 0.0 for split in FOLDER_SPLITS}

    def write(self, split: str, source, samples: np.ndarray, f0: np.ndarray, weight: float) -> None:
        item = f"{split}_{len(self.rows):05d}"
        n_frames = features.n_frames_for(samples.size)
        f0 = np.pad(f0, (0, max(0, n_frames - len(f0))))[:n_frames]
        write_sound_atomic(self.folder / "audio" / f"{item}.flac", np.clip(samples, -1.0, 1.0), features.SAMPLE_RATE,
                           subtype="PCM_16")
        write_text_atomic(self.folder / "labels" / f"{item}.f0.txt", format_label(f0))
        self.rows.append({"id": item, "audio": f"audio/{item}.flac", "label": f"labels/{item}.f0.txt",
                          "split": split, "weight": weight, "source": str(source.audio)})
        self.seconds[split] += samples.size / features.SAMPLE_RATE

    @property
    def minutes(self) -> dict[str, float]:
        """Minutes of audio written per split."""
        return {split: round(value / 60.0, 2) for split, value in self.seconds.items()}

    def finish(self, info: dict) -> None:
        """``export.json``, then the manifest last: a folder without it is unfinished."""
        info["minutes"] = self.minutes
        write_text_atomic(self.folder / "export.json", json.dumps(info, indent=1) + "\n")
        write_text_atomic(self.folder / "manifest.csv", csv_text(self.rows, list(self.rows[0])))


def _check_export_target(folder: Path) -> None:
    if (folder / "manifest.csv").exists():
        raise MelodyError(f"{folder} already holds a training folder; choose a new --export folder")
    if folder.is_dir() and any(p.name not in ("audio", "labels", "export.json") for p in folder.iterdir()):
        raise MelodyError(f"--export {folder} holds other files; choose a new or empty folder")


def export_folder(folder: Path, sources: ExportSources, store: StudentData, labeled: list, unlabeled: list,
                  val: list, progress: bool = True) -> None:
    """Write one iteration's training data as a folder that ``--data`` trains on (no TensorFlow needed there)."""
    from tqdm import tqdm

    _check_export_target(folder)
    digest = file_digest(sources.teacher)
    # pseudo labels first: a bad unlabeled file fails before the folder is made
    unlabeled_data = build_unlabeled(unlabeled, store, load_teacher(sources.teacher), digest, sources.setup)
    writer = _FolderWriter(folder)
    student_augmented = SETUPS[sources.setup].student_augmented
    view = 0
    for track in tqdm(unlabeled, desc="export pseudo-labeled", unit="track", disable=not progress, file=sys.stderr):
        for samples in view_audio(track, store, student_augmented):
            writer.write("pseudo", track, samples, class_to_f0(unlabeled_data.classes[view]), sources.unlabeled_weight)
            view += 1
    for track in tqdm(labeled, desc="export labeled", unit="track", disable=not progress, file=sys.stderr):
        for samples in view_audio(track, store, student_augmented):
            classes = frame_classes(track.f0, features.n_frames_for(samples.size))
            writer.write("train", track, samples, class_to_f0(classes), 1.0)
    for track in tqdm(val, desc="export validation", unit="track", disable=not progress, file=sys.stderr):
        writer.write("val", track, features.load_audio(track.audio), track.f0, 1.0)
    writer.finish({"format": FOLDER_FORMAT, "teacher": str(sources.teacher), "teacher_sha1": digest,
                   "setup": sources.setup, "k": store.k, "seed": store.seed, "original_rate_quirk": store.quirk,
                   "pseudo_voicing": store.pseudo_voicing, "unlabeled_weight": sources.unlabeled_weight, "minutes": {},
                   "sources": {"labeled": [str(s) for s in sources.labeled or []], "unlabeled": sources.unlabeled,
                               "unlabeled_manifest": sources.unlabeled_manifest}})
    if progress:
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2 ** 20
        print(f"exported {len(writer.rows)} items ({', '.join(f'{k} {v} min' for k, v in writer.minutes.items())}; "
              f"{size:.1f} MiB) to {folder}", file=sys.stderr)


def training_folder_info(folder: Path, teacher_path: Path) -> dict:
    """The export record of a training folder, checked to be one and to belong to the teacher."""
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
    info = training_folder_info(folder, teacher_path)
    tracks = {split: read_manifest(folder / "manifest.csv", splits=(split,)) for split in FOLDER_SPLITS}
    if not tracks["val"]:
        raise MelodyError(f"{folder}: no validation tracks")
    if not tracks["pseudo"]:
        raise MelodyError(f"{folder}: no pseudo-labeled tracks")
    return info, tracks
