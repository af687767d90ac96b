"""MIR-1K (Hsu and Jang 2010): real karaoke singing with a hand-checked vocal pitch label every 20 ms.

Two layouts are read to the same clips: the release's ``Wavfile/NAME.wav`` (16 kHz stereo, left channel the
accompaniment, right the voice) and a two-file layout ``Voice/NAME.*`` + ``Accompaniment/NAME.*`` (the shared
copy's mono Opus files, the release's channels). Labels are ``PitchLabel/NAME.pv`` in either layout. A clip's
name is ``SINGER_SONG_PHRASE``; singers never share a song, so a split by singer holds whole songs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocal_melody.audio import decode_audio, to_mono_rate
from vocal_melody.lab.corpora.datasets import read_label
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import AUDIO_EXTENSIONS

RELEASE_RATE = 16000

SINGER_SPLITS = {
    "test": ("abjones", "ariel", "davidson", "yifen"),
    "val": ("Ani", "jmzen", "stool"),
}
"""Held-out singers (every other one trains): test 200 clips, val 135, train 581. The shared copy does not
record the singers' sex; each held-out split has low and high voices by the median pitch of the labels
(:data:`SINGER_MEDIAN_MIDI`), which stands in for male and female singers."""

SINGER_MEDIAN_MIDI = {
    "Ani": 60.0, "Kenshin": 61.2, "abjones": 50.6, "amy": 61.2, "annar": 58.2, "ariel": 63.1, "bobon": 57.2,
    "bug": 54.9, "davidson": 47.9, "fdps": 58.7, "geniusturtle": 52.9, "jmzen": 52.0, "leon": 56.9,
    "stool": 54.3, "tammy": 58.9, "titon": 63.5, "yifen": 62.5,
}
"""Median voiced pitch of each singer's labels (MIDI) in the shared copy (17 of the release's 19 singers)."""


@dataclass(frozen=True)
class Clip:
    """One MIR-1K clip: its name, singer, split and files (``wav`` for the release's layout, else the two)."""

    name: str
    singer: str
    split: str
    label: Path
    wav: Path | None = None
    voice: Path | None = None
    accompaniment: Path | None = None


def singer_of(name: str) -> str:
    """``abjones_1_01`` -> ``abjones``."""
    return name.split("_")[0]


def split_of(singer: str) -> str:
    """The split a singer belongs to (test, val or train)."""
    for split, singers in SINGER_SPLITS.items():
        if singer in singers:
            return split
    return "train"


def _audio_by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_EXTENSIONS}


def find_clips(root: str | os.PathLike, splits: tuple[str, ...] | None = None) -> list[Clip]:
    """The labeled clips of a MIR-1K folder in either layout, sorted by name, optionally only of ``splits``."""
    root = Path(root)
    labels = root / "PitchLabel"
    if not labels.is_dir():
        raise MelodyError(f"{root}: not a MIR-1K folder (no PitchLabel/)")
    if (root / "Wavfile").is_dir():
        wavs = _audio_by_stem(root / "Wavfile")
        def files(name):
            return {"wav": wavs[name]} if name in wavs else None
    elif (root / "Voice").is_dir() and (root / "Accompaniment").is_dir():
        voices, accompaniments = _audio_by_stem(root / "Voice"), _audio_by_stem(root / "Accompaniment")
        def files(name):
            if name in voices and name in accompaniments:
                return {"voice": voices[name], "accompaniment": accompaniments[name]}
            return None
    else:
        raise MelodyError(f"{root}: not a MIR-1K folder (needs Wavfile/, or Voice/ and Accompaniment/)")
    clips = []
    for label in sorted(labels.glob("*.pv")):
        found = files(label.stem)
        split = split_of(singer_of(label.stem))
        if found is None or (splits and split not in splits):
            continue
        clips.append(Clip(label.stem, singer_of(label.stem), split, label, **found))
    if not clips:
        raise MelodyError(f"{root}: no MIR-1K clip has both audio and a PitchLabel/*.pv label")
    return clips


def read_channels(clip: Clip) -> tuple[np.ndarray, np.ndarray, int]:
    """The clip's voice and accompaniment as float32 mono at their own rate (the release's 16 kHz)."""
    if clip.wav is not None:
        stereo, rate = decode_audio(clip.wav)
        if stereo.ndim != 2 or stereo.shape[1] != 2:
            raise MelodyError(f"{clip.wav}: a MIR-1K Wavfile must be stereo (accompaniment left, voice right)")
        return stereo[:, 1].copy(), stereo[:, 0].copy(), rate
    voice, rate = decode_audio(clip.voice)
    accompaniment, accompaniment_rate = decode_audio(clip.accompaniment)
    if accompaniment_rate != rate:
        accompaniment = to_mono_rate(accompaniment, accompaniment_rate, rate, str(clip.accompaniment))
    voice = voice.mean(axis=1) if voice.ndim == 2 else voice
    accompaniment = accompaniment.mean(axis=1) if accompaniment.ndim == 2 else accompaniment
    n = min(len(voice), len(accompaniment))
    return voice[:n].astype(np.float32), accompaniment[:n].astype(np.float32), rate


def read_clip_label(clip: Clip, n_frames: int | None = None) -> np.ndarray:
    """The clip's label on the 10 ms grid (Hz, 0 = no pitched voice)."""
    return read_label(clip.label, "mir1k", n_frames)
