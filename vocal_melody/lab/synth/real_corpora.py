"""Labeled corpora of real singing: MIR-1K mixes by singer split, and SSVD voices over pool music.

Both write a labeled manifest (``id, split, audio, label, ...``; the trainers' ``--train``/``--val`` and
``evaluate.py`` read it), mixes as 16-bit FLAC and labels on the 10 ms grid, each file atomically. A folder
records its settings (``SETTINGS_FILE``); rerunning with the same settings keeps what is made (a run resumes),
with other settings it is refused, so two settings never mix in one folder.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vocal_melody import features, labels
from vocal_melody.audio import load_audio
from vocal_melody.lab.corpora import mir1k, ssvd
from vocal_melody.lab.corpora.music_pool import MusicPool
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import csv_text, ensure_output_dir, write_text_atomic
from vocal_melody.formats.writers import format_label
from vocal_melody.lab.synth.compose import SourceCache, pool_excerpt
from vocal_melody.lab.synth.mixing import label_frames, mix_at_ratio, rms_db, write_audio
from vocal_melody.lab.synth.originals import singing_frames

SETTINGS_FILE = "corpus.json"

MIR1K_FIELDS = ("id", "split", "audio", "label", "singer", "ratio_db", "seconds")
SSVD_FIELDS = ("id", "split", "audio", "label", "voice", "accompaniment", "ratio_db", "seconds", "seed")

SSVD_RATIO_DB = (-5.0, 10.0)
"""Vocal-to-accompaniment ratio range of the SSVD mixes (compose's sung items'), measured where the voice sings."""


def _claim_folder(output_dir: Path, settings: dict) -> None:
    """Record a folder's settings, or refuse a folder made with others (unless nothing was made in it yet)."""
    path = output_dir / SETTINGS_FILE
    if path.is_file():
        try:
            before = json.loads(path.read_text())
        except (OSError, ValueError):
            raise MelodyError(f"{path}: not a corpus settings file; use another -o") from None
        if before == settings:
            return
        if any(p.name != SETTINGS_FILE for p in output_dir.iterdir()):
            made_with = ", ".join(f"{k} {v}" for k, v in before.items())
            raise MelodyError(f"{output_dir} holds a corpus made with other settings ({made_with}); "
                              "use another -o, or the same settings to resume")
        # nothing made yet (a run that failed before its first clip): the folder takes the new settings
    write_text_atomic(ensure_output_dir(output_dir) / SETTINGS_FILE, json.dumps(settings, indent=1) + "\n")


def _write_manifest(output_dir: Path, rows: list[dict], fields: tuple[str, ...]) -> None:
    write_text_atomic(output_dir / "manifest.csv", csv_text(rows, fields))


def mir1k_mix(voice: np.ndarray, accompaniment: np.ndarray, ratio_db: float | None = None) -> np.ndarray:
    """The release's mixture (the channels' sum) or, with ``ratio_db``, the voice that many dB above the
    accompaniment (levels over the whole clip, as MIR-1K's 0 / -5 / +5 dB mixes in the literature), peak 0.9
    at most."""
    if ratio_db is None:
        mixed = voice + accompaniment
    else:
        mixed = voice + accompaniment * 10.0 ** ((rms_db(voice) - ratio_db - rms_db(accompaniment)) / 20.0)
    peak = float(np.max(np.abs(mixed))) if len(mixed) else 0.0
    return (mixed * (0.9 / peak) if peak > 0.9 else mixed).astype(np.float32)


def mir1k_corpus(root: str | os.PathLike, output_dir: str | os.PathLike, ratio_db: float | None = None,
                 splits: tuple[str, ...] | None = None, progress: bool = True) -> list[dict]:
    """MIR-1K clips mixed at the release's ratio (``None``) or at ``ratio_db``, with their labels, by singer split.

    Writes ``SPLIT/NAME.flac`` and ``SPLIT/NAME.f0.txt`` (16 kHz, the release's rate) and ``manifest.csv``.
    """
    from tqdm import tqdm

    clips = mir1k.find_clips(root, splits)
    output_dir = Path(output_dir)
    _claim_folder(output_dir, {"corpus": "mir1k", "ratio_db": ratio_db})
    rows = []
    for clip in tqdm(clips, desc="MIR-1K clips", unit="clip", disable=not progress, file=sys.stderr):
        audio = Path(clip.split) / f"{clip.name}.flac"
        label = audio.with_suffix(".f0.txt")
        if not (output_dir / audio).exists() or not (output_dir / label).exists():
            voice, accompaniment, rate = mir1k.read_channels(clip)
            mixed = mir1k_mix(voice, accompaniment, ratio_db)
            n_frames = features.n_frames_for(int(round(len(mixed) * features.SAMPLE_RATE / rate)))
            f0 = mir1k.read_clip_label(clip, n_frames)
            ensure_output_dir(output_dir / clip.split)
            write_text_atomic(output_dir / label, format_label(f0))
            write_audio(output_dir / audio, mixed, rate)
        seconds = _seconds(output_dir / audio)
        rows.append({"id": clip.name, "split": clip.split, "audio": audio.as_posix(), "label": label.as_posix(),
                     "singer": clip.singer, "ratio_db": "release" if ratio_db is None else ratio_db,
                     "seconds": seconds})
    _write_manifest(output_dir, rows, MIR1K_FIELDS)
    return rows


def _seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return round(info.frames / info.samplerate, 3)


def ssvd_label(voice_cache: SourceCache, recording: ssvd.Recording, n_samples: int,
               tolerance_cents: float = ssvd.NOTE_TOLERANCE_CENTS) -> np.ndarray:
    """The recording's label on the 10 ms grid: its gated WORLD analysis kept inside its notes (see ``ssvd``)."""
    analysis = voice_cache.voice(recording.audio)
    f0 = np.where(labels.f0_to_class(analysis.f0) > 0, analysis.f0, 0.0)  # outside the label range: unvoiced
    f0 = label_frames(f0, analysis.frame_period, n_samples, voice_cache.sample_rate)
    return ssvd.gate_by_notes(f0, ssvd.read_notes(recording.notes), tolerance_cents)


def _analyse(args: tuple[str, int, str]) -> None:
    cache_dir, sample_rate, audio = args
    SourceCache(Path(cache_dir), sample_rate).voice(Path(audio))


def ssvd_mixes(root: str | os.PathLike, pool: MusicPool, output_dir: str | os.PathLike, seed: int,
               cache_dir: str | os.PathLike, sample_rate: int, splits: tuple[str, ...] | None = None,
               mixes_per_recording: int = 1, tolerance_cents: float = ssvd.NOTE_TOLERANCE_CENTS,
               workers: int = 1, progress: bool = True) -> list[dict]:
    """Every SSVD recording of ``splits`` mixed ``mixes_per_recording`` times over random excerpts of its split's
    pool music, at a ratio drawn from :data:`SSVD_RATIO_DB`; each mix with its recording's label.

    Deterministic in (seed, recording's index within its split, mix index). ``workers`` processes run the WORLD
    analyses (cached in ``cache_dir``) before the mixing.
    """
    from tqdm import tqdm

    recordings = ssvd.find_recordings(root, splits)
    for split in sorted({r.split for r in recordings}):
        if not pool.accompaniment.get(split):
            raise MelodyError(f"the music pool has no screened instrumental tracks in its {split} split")
    output_dir = Path(output_dir)
    _claim_folder(output_dir, {"corpus": "ssvd", "seed": seed, "sample_rate": sample_rate,
                               "mixes_per_recording": mixes_per_recording, "tolerance_cents": tolerance_cents})
    todo = [str(r.audio) for r in recordings
            if not all((output_dir / r.split / f"ssvd_{r.name}_{k}.flac").exists() for k in range(mixes_per_recording))]
    if workers > 1 and todo:
        with ProcessPoolExecutor(workers) as executor:
            list(tqdm(executor.map(_analyse, [(str(cache_dir), sample_rate, a) for a in todo]), total=len(todo),
                      desc="WORLD analyses", unit="recording", disable=not progress, file=sys.stderr))
    voice_cache = SourceCache(Path(cache_dir), sample_rate)
    index_in_split: dict[str, int] = {}
    rows = []
    for recording in tqdm(recordings, desc="SSVD mixes", unit="recording", disable=not progress, file=sys.stderr):
        index = index_in_split[recording.split] = index_in_split.get(recording.split, -1) + 1
        music = pool.accompaniment[recording.split]
        vocal = None
        for k in range(mixes_per_recording):
            rng = np.random.default_rng([seed, index, k])
            track = Path(music[int(rng.integers(len(music)))])
            ratio_db = float(rng.uniform(*SSVD_RATIO_DB))
            audio = Path(recording.split) / f"ssvd_{recording.name}_{k}.flac"
            label = audio.with_suffix(".f0.txt")
            if not (output_dir / audio).exists() or not (output_dir / label).exists():
                if vocal is None:
                    vocal = load_audio(recording.audio, sample_rate)
                    f0 = ssvd_label(voice_cache, recording, len(vocal), tolerance_cents)
                accompaniment = pool_excerpt(rng, track, len(vocal), sample_rate)
                mixed, _ = mix_at_ratio(vocal, accompaniment, ratio_db, singing_frames(vocal, sample_rate))
                ensure_output_dir(output_dir / recording.split)
                write_text_atomic(output_dir / label, format_label(f0))
                write_audio(output_dir / audio, mixed, sample_rate)
            rows.append({"id": audio.stem, "split": recording.split, "audio": audio.as_posix(),
                         "label": label.as_posix(), "voice": str(recording.audio), "accompaniment": str(track),
                         "ratio_db": round(ratio_db, 2), "seconds": _seconds(output_dir / audio), "seed": seed})
    _write_manifest(output_dir, rows, SSVD_FIELDS)
    return rows
