"""Dataset readers and the feature cache.

Readers turn a corpus into :class:`LabeledTrack` items: an audio path and
its f0 on the extractor's 10 ms frame grid (frame ``j`` at ``0.01 * j`` s).
Labels are moved to the grid by nearest frame, never interpolated (an
interpolation would invent pitches across unvoiced gaps).

Formats: this project's ``manifest.csv``; generic two-column ``time f0``
text/CSV (ADC2004/MIREX05 ``*REF.txt``, MedleyDB ``*_MELODY2.csv``,
vocadito ``*_f0.csv``); MIR-1K ``.pv`` (20 ms, semitones); iKala ``.pv``
(32 ms, MIDI).

The feature cache stores each track's spectrogram once (float16 ``.npy``,
memory-mapped when training), keyed by the audio's content and the feature
parameters, written atomically.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocal_melody import features
from vocal_melody.audio import check_audio_file
from vocal_melody.cache import cache_key, file_digest
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import AUDIO_EXTENSIONS, atomic_path
from vocal_melody.formats.readers import read_f0, validate_f0
from vocal_melody.formats.tracks import track_key
from vocal_melody.labels import f0_to_class, midi_to_hz

FRAME_S = features.FRAME_SECONDS


@dataclass
class LabeledTrack:
    """An audio file with its f0 on the 10 ms grid (None for unlabeled audio)."""

    audio: Path
    f0: np.ndarray | None
    name: str
    split: str = "train"
    group: str = ""
    """The corpus it came from (its manifest or folder): validation can weigh each group the same."""


# ----------------------------------------------------------------------------- label formats

def to_frame_grid(times: np.ndarray, f0: np.ndarray, n_frames: int | None = None,
                  label_hop: float | None = None) -> np.ndarray:
    """f0 on the 10 ms grid by nearest label frame; 0 where no label frame is within half a hop."""
    times = np.asarray(times, dtype=np.float64)
    f0 = np.asarray(f0, dtype=np.float64)
    if label_hop is None:
        label_hop = float(np.median(np.diff(times))) if len(times) > 1 else FRAME_S
    if n_frames is None:
        n_frames = int(np.floor((times[-1] + label_hop / 2) / FRAME_S)) + 1
    grid = np.arange(n_frames) * FRAME_S
    right = np.clip(np.searchsorted(times, grid), 0, len(times) - 1)
    left = np.clip(right - 1, 0, len(times) - 1)
    nearest = np.where(np.abs(times[left] - grid) <= np.abs(times[right] - grid), left, right)
    close = np.abs(times[nearest] - grid) <= label_hop / 2 + 1e-6
    return np.where(close, f0[nearest], 0.0)


def read_pv(path: str | os.PathLike, hop: float, first_time: float) -> tuple[np.ndarray, np.ndarray]:
    """A ``.pv`` file: one pitch per line in semitones (MIDI numbers), 0 = unvoiced."""
    path = Path(path)
    try:
        values = np.array([float(line) for line in path.read_text().split()], dtype=np.float64)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise MelodyError(f"{path}: not a .pv pitch file ({type(error).__name__})") from None
    if values.size == 0:
        raise MelodyError(f"{path}: no pitch values")
    times = first_time + hop * np.arange(values.size)
    f0 = np.where(values > 0, midi_to_hz(values), 0.0)
    return validate_f0(path, times, f0)


LABEL_FORMATS = {
    "f0": lambda p: read_f0(p),
    "mir1k": lambda p: read_pv(p, hop=0.02, first_time=0.02),     # 40 ms frames every 20 ms
    "ikala": lambda p: read_pv(p, hop=0.032, first_time=0.016),   # 32 ms frames
}
"""Label format name -> reader returning (times, f0 Hz)."""
LABEL_HOPS = {"mir1k": 0.02, "ikala": 0.032}


def read_label(path: str | os.PathLike, fmt: str = "f0", n_frames: int | None = None) -> np.ndarray:
    """A label file in ``fmt`` as f0 on the 10 ms grid."""
    if fmt not in LABEL_FORMATS:
        raise MelodyError(f"unknown label format {fmt!r} (choose from {', '.join(LABEL_FORMATS)})")
    if fmt == "f0":
        times, f0 = read_f0(path, keep_negative=True)
        if (f0 < 0).all():
            raise MelodyError(f"{path}: every f0 is negative (unvoiced frames with pitch guesses, as an estimate "
                              "written with --unvoiced-pitch); a label needs its voiced frames as positive f0")
        f0 = np.maximum(f0, 0.0)
    else:
        times, f0 = LABEL_FORMATS[fmt](path)
    return to_frame_grid(times, f0, n_frames, LABEL_HOPS.get(fmt))


# ----------------------------------------------------------------------------- corpora

def read_manifest(path: str | os.PathLike, splits: tuple[str, ...] | None = None,
                  with_labels: bool = True) -> list[LabeledTrack]:
    """Tracks of a ``synth_testset.py compose`` manifest (paths relative to it), optionally by split."""
    path = Path(path)
    if not path.is_file():
        raise MelodyError(f"manifest {path} not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's byte-order mark is fine
            reader = csv.DictReader(handle)
            columns, rows = reader.fieldnames, list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise MelodyError(f"{path}: not a manifest (not CSV text: {error.__class__.__name__})") from error
    if columns and not {"audio", "label", "split"} <= set(columns):
        raise MelodyError(f"{path}: not a manifest (needs columns audio, label, split)")
    if not rows:  # else, among several manifests, an empty one would add nothing without a word
        raise MelodyError(f"{path}: empty manifest (no rows)")
    tracks = []
    for number, row in enumerate(rows, start=2):
        if splits and row["split"] not in splits:
            continue
        if not row.get("audio") or (with_labels and not row.get("label")):
            raise MelodyError(f"{path}: row {number} has no {'audio' if not row.get('audio') else 'label'} file")
        f0 = read_label(path.parent / row["label"]) if with_labels else None
        tracks.append(LabeledTrack(path.parent / row["audio"], f0, row.get("id") or Path(row["audio"]).stem,
                                   row["split"], str(path)))
    return tracks


def pair_folder(audio_dir: str | os.PathLike, label_dir: str | os.PathLike | None = None,
                fmt: str = "f0", split: str = "train") -> list[LabeledTrack]:
    """Audio files and label files matched by name (``song.wav`` <-> ``song.csv``, ``song_MELODY2.csv``...)."""
    audio_dir = Path(audio_dir)
    label_dir = Path(label_dir or audio_dir)
    if not audio_dir.is_dir():
        raise MelodyError(f"audio folder {audio_dir} not found")
    labels = {}
    for candidate in sorted(label_dir.iterdir()):
        if candidate.is_file() and candidate.suffix.lower() not in AUDIO_EXTENSIONS:
            labels.setdefault(track_key(candidate), candidate)
    tracks = []
    for audio in sorted(p for p in audio_dir.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS):
        key = track_key(audio)
        if key in labels:
            tracks.append(LabeledTrack(audio, read_label(labels[key], fmt), key, split, str(audio_dir)))
    if not tracks:
        raise MelodyError(f"no audio in {audio_dir} has a label in {label_dir}")
    return tracks


def unlabeled_folder(folders: list[str | os.PathLike], shard: tuple[int, int] = (0, 1)) -> list[LabeledTrack]:
    """Audio files of folders (recursively), no labels; ``shard=(k, n)`` keeps every n-th from the k-th."""
    paths = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_file():
            paths.append(folder)
        elif folder.is_dir():
            paths.extend(sorted(p for p in folder.rglob("*")
                                if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            raise MelodyError(f"{folder}: no such file or folder")
    k, n = shard
    return [LabeledTrack(p, None, p.name, "unlabeled") for i, p in enumerate(sorted(paths)) if i % n == k]


def frame_classes(f0: np.ndarray, n_frames: int) -> np.ndarray:
    """Class index per spectrogram frame (label padded with unvoiced or cut to ``n_frames``)."""
    f0 = np.pad(f0, (0, max(0, n_frames - len(f0))))[:n_frames]
    return f0_to_class(f0).astype(np.int16)


# ----------------------------------------------------------------------------- feature cache

class FeatureCache:
    """Spectrograms of audio files, computed once and stored as float16 ``.npy``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @classmethod
    def under(cls, cache_root: str | os.PathLike) -> FeatureCache:
        """The feature cache inside a ``--cache-dir`` root."""
        return cls(Path(cache_root) / "features")

    def key(self, audio: Path, augmentation: str = "") -> str:
        return cache_key("spectrogram", file_digest(audio), features.FEATURE_DEFINITION, augmentation)

    def spectrogram(self, audio: str | os.PathLike, augmentation: str = "",
                    compute=None) -> np.ndarray:
        """The (n_frames, 513) float16 spectrogram, memory-mapped from the cache.

        ``compute`` (audio path -> 8 kHz samples) replaces plain loading, e.g.
        to apply an augmentation chain named by ``augmentation``.
        """
        audio = Path(audio)
        check_audio_file(audio)
        path = self.root / f"{self.key(audio, augmentation)}.npy"
        if path.exists():
            try:
                return np.load(path, mmap_mode="r")
            except (OSError, ValueError):
                pass  # unreadable entry: recompute it
        samples = compute(audio) if compute else features.load_audio(audio)
        spec = features.spectrogram(samples).astype(np.float16)
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temp:
            with open(temp, "wb") as handle:
                np.save(handle, spec)
        return np.load(path, mmap_mode="r")
