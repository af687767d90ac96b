"""Which reference goes with which estimate: track names across annotation conventions.

``pitch_song.wav.txt`` (this tool's output) matches ``song.csv``, ``song_MELODY2.csv`` (MedleyDB),
``songREF.txt`` (ADC2004/MIREX05) or ``song_f0.csv``; a compose manifest names its own labels.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from vocal_melody.errors import MelodyError, warn
from vocal_melody.fileio import AUDIO_EXTENSIONS
from vocal_melody.formats.readers import read_f0


_ANNOTATION_SUFFIXES = re.compile(r"(_MELODY[123]|REF|_f0|\.f0|_pitch|\.pitch)$", re.IGNORECASE)


_F0_FILE_EXTENSIONS = (".txt", ".csv", ".json", ".tsv", ".f0", ".lab")


def track_key(path: str | os.PathLike) -> str:
    """The track name a reference or estimate file refers to."""
    name = Path(path).name
    if name.startswith("pitch_"):
        name = name[len("pitch_"):]
    stem, ext = os.path.splitext(name)
    if ext.lower() in _F0_FILE_EXTENSIONS:
        name = stem
    stem, ext = os.path.splitext(name)
    if ext.lower() in AUDIO_EXTENSIONS:
        name = stem
    return _ANNOTATION_SUFFIXES.sub("", name)


def _is_f0_json(path: Path) -> bool:
    try:
        read_f0(path)
    except MelodyError:
        return False
    return True


def _f0_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in _F0_FILE_EXTENSIONS and not path.name.startswith("."):
            key = track_key(path)
            if path.suffix.lower() == ".json" and not _is_f0_json(path):
                continue  # e.g. the metadata that compose writes beside each label
            if key in files:
                raise MelodyError(f"{folder}: two files for track {key!r}: {files[key].name} and {path.name}")
            files[key] = path
    return files


def _manifest_labels(path: Path, split: str | None) -> dict[str, Path] | None:
    """Track -> label file of a ``synth_testset.py compose`` manifest (one split or all); None if not a manifest."""
    if path.suffix.lower() != ".csv":
        return None
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"audio", "label", "split"} <= set(rows[0]):
        return None
    labels = {track_key(row["audio"]): path.parent / row["label"] for row in rows
              if split is None or row["split"] == split}
    if not labels:
        raise MelodyError(f"{path}: no tracks in split {split!r}")
    return labels


def match_files(reference: Path, estimate: Path, split: str | None = None) -> list[tuple[str, Path, Path]]:
    """Pairs ``(track, reference file, estimate file)``: two files, two folders, or a manifest and a folder.

    A compose manifest's labels are matched to estimates by audio file name
    (``test_00006.flac`` <-> ``pitch_test_00006.flac.txt``); ``split`` keeps
    one of its splits.
    """
    for path in (reference, estimate):
        if not path.exists():
            raise MelodyError(f"{path}: no such file or folder")
    manifest = reference.is_file() and _manifest_labels(reference, split) is not None
    if manifest and not estimate.is_dir():
        raise MelodyError(f"{reference} is a corpus manifest: give the folder of estimates second")
    if not manifest and reference.is_dir() != estimate.is_dir():
        raise MelodyError("give two files or two folders (reference first, then estimate), "
                          "or a compose manifest and a folder")
    if not manifest and not reference.is_dir():
        return [(track_key(reference), reference, estimate)]
    references = _manifest_labels(reference, split) if manifest else _f0_files(reference)
    estimates = _f0_files(estimate)
    common = sorted(set(references) & set(estimates))
    if not common:
        raise MelodyError(f"no track of {reference} has an estimate in {estimate} "
                          "(names must match, e.g. song_MELODY2.csv and pitch_song.wav.txt)")
    unmatched = sorted(set(references) - set(estimates))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
        warn(f"{len(unmatched)} of {len(references)} references in {reference} have no estimate in {estimate} "
             f"({shown}); the mean covers the other {len(common)}")
    return [(key, references[key], estimates[key]) for key in common]
