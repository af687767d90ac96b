"""SSVD v2.0 (MusicYOLO, ICASSP 2022): unaccompanied amateur sight-singing with note annotations.

A note label is not an f0 track: the f0 label of a recording is an analysis of the isolated voice (the project's
gated WORLD analysis), kept only inside an annotated note and within :data:`NOTE_TOLERANCE_CENTS` of the
note's pitch (unvoiced elsewhere): the notes remove what the analysis voices between notes (breaths, room
noise) and its octave errors. The authors' split is kept: ``train_valid/`` trains; ``test/`` is halved by
name into val and test (its recordings in sorted order, alternately), so no recording is in two splits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocal_melody import features
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import AUDIO_EXTENSIONS
from vocal_melody.labels import hz_to_midi

NOTE_TOLERANCE_CENTS = 200.0
"""An analysed frame inside a note is kept within this of the note's pitch: the annotation is the sung note's
centre, scoops and drift stay within it, octave errors do not (on every 20th recording 98.7 % of the analysis'
note frames are within 200 cents, 94 % within 100, 77 % within 50)."""

FOLDER_SPLITS = {"train_valid": ("train",), "test": ("val", "test")}
"""The authors' folders and the splits they give."""


@dataclass(frozen=True)
class Recording:
    """An SSVD recording: its audio, note file and split."""

    name: str
    audio: Path
    notes: Path
    split: str


def find_recordings(root: str | os.PathLike, splits: tuple[str, ...] | None = None) -> list[Recording]:
    """The recordings with note files of an SSVD folder (``train_valid/``, ``test/``), optionally of ``splits``."""
    root = Path(root)
    if not any((root / folder).is_dir() for folder in FOLDER_SPLITS):
        raise MelodyError(f"{root}: not an SSVD folder (needs train_valid/ or test/)")
    recordings = []
    for folder, folder_splits in FOLDER_SPLITS.items():
        if not (root / folder).is_dir():
            continue
        audio = sorted(p for p in (root / folder).iterdir()
                       if p.suffix.lower() in AUDIO_EXTENSIONS and p.with_suffix(".txt").is_file())
        for index, path in enumerate(audio):
            split = folder_splits[index % len(folder_splits)]
            if not splits or split in splits:
                recordings.append(Recording(path.stem, path, path.with_suffix(".txt"), split))
    if not recordings:
        raise MelodyError(f"{root}: no SSVD recording has a note file (NAME.txt beside NAME.opus)")
    return recordings


def read_notes(path: str | os.PathLike) -> np.ndarray:
    """Notes as an (n, 3) array of onset s, offset s, MIDI pitch (``onset<TAB>offset<TAB>pitch`` lines)."""
    path = Path(path)
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        notes = np.array(rows, dtype=np.float64).reshape(-1, 3)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise MelodyError(f"{path}: not an SSVD note file (onset, offset, pitch per line: "
                          f"{type(error).__name__})") from None
    if not np.isfinite(notes).all() or (notes[:, 1] < notes[:, 0]).any() or (notes[:, 2] <= 0).any():
        raise MelodyError(f"{path}: a note ends before it starts or has no pitch")
    return notes


def note_pitch_on_grid(notes: np.ndarray, n_frames: int) -> np.ndarray:
    """The annotated note's MIDI pitch per 10 ms frame (0 outside notes)."""
    pitch = np.zeros(n_frames)
    times = features.frame_times(n_frames)
    for onset, offset, midi in notes:
        pitch[(times >= onset) & (times < offset)] = midi
    return pitch


def gate_by_notes(f0: np.ndarray, notes: np.ndarray,
                  tolerance_cents: float = NOTE_TOLERANCE_CENTS) -> np.ndarray:
    """``f0`` (Hz, 10 ms grid) kept where a note sounds and it is within ``tolerance_cents`` of the note."""
    note = note_pitch_on_grid(notes, len(f0))
    voiced = (f0 > 0) & (note > 0)
    deviation = np.full(len(f0), np.inf)
    deviation[voiced] = 100.0 * np.abs(hz_to_midi(f0[voiced]) - note[voiced])
    return np.where(deviation <= tolerance_cents, f0, 0.0)


def note_agreement(f0: np.ndarray, notes: np.ndarray,
                   tolerance_cents: float = NOTE_TOLERANCE_CENTS) -> dict[str, float]:
    """How an analysis ``f0`` (Hz, 10 ms grid) agrees with the notes, in frames: the share of note frames it
    voices, the share of those within the tolerance, and the share of its voiced frames outside every note."""
    note = note_pitch_on_grid(notes, len(f0))
    in_note, voiced = note > 0, f0 > 0
    both = in_note & voiced
    within = 100.0 * np.abs(hz_to_midi(f0[both]) - note[both]) <= tolerance_cents
    return {"note_frames": int(in_note.sum()), "voiced_in_notes": float(both.sum() / max(in_note.sum(), 1)),
            "within_tolerance": float(within.mean()) if both.any() else 0.0,
            "voiced_outside_notes": float((voiced & ~in_note).sum() / max(voiced.sum(), 1))}
