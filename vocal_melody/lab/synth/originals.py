"""Real singing over real music: the voices' *original* recordings (not re-synthesized by WORLD) mixed over pool
music of the same split. Without labels they are unlabeled audio for the Noisy Student (its teacher labels
them); with ``labels`` each mix also gets the WORLD analysis label of its voice (gated harvest f0, the one
analysis-synthesis resynthesizes with), so real singing can be scored: on validation voices, a validation set
of real (not re-synthesized) singing. That label is an analysis of the isolated recording, not a human one: at
note edges it calls more frames voiced than a human annotator does (docs/data.md measures it on vocadito_1).

Only the split's singing voices and pool packages are used, so the training split hears nothing of a validation
or test split. Mixes are deterministic in (seed, split, voice index, mix index), written atomically, and a
folder's existing mixes are kept, so a run resumes; a folder of mixes made with other settings is refused.
With ``sources.vibrato_share`` that share of the mixes' music gets a sung-like vibrato (as ``compose`` does):
real singing over music that also has one, so a model must tell the voice by more than its vibrato.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from vocal_melody import labels
from vocal_melody.audio import load_audio
from vocal_melody.lab.corpora.music_pool import MusicPool
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import csv_text, ensure_output_dir, write_text_atomic
from vocal_melody.formats.writers import format_label
from vocal_melody.lab.synth.compose import (SourceCache, Sources, maybe_vibrato, pool_excerpt, read_settings,
                                        vibrato_settings)
from vocal_melody.lab.synth.mixing import label_frames, mix_at_ratio, write_audio


RATIO_DB = (-3.0, 9.0)
"""Vocal-to-accompaniment ratio range, as for the labeled corpus's sung items."""


ACTIVE_FRAME_S = 0.03


ACTIVE_WITHIN_DB = 20.0
"""A frame sings when its energy is within this of the recording's 95th-percentile frame (the voice's level
is measured there, not over its pauses)."""


MANIFEST_FIELDS = ("id", "audio", "voice", "accompaniment", "ratio_db", "seconds", "seed")


SETTINGS_FILE = "originals.json"
"""A folder's music settings beyond the plan (the vibrato), checked on resume."""


LABELED_MANIFEST_FIELDS = ("id", "split", "audio", "label", "voice", "accompaniment", "ratio_db", "seconds", "seed")
"""With labels the manifest is a labeled one (``--labeled``, ``--val``, ``tune_voicing.py --val`` read it)."""


def singing_frames(vocal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Sample mask of where an isolated voice recording sings (an energy gate)."""
    hop = max(1, int(ACTIVE_FRAME_S * sample_rate))
    if len(vocal) < hop:
        return np.ones(len(vocal), bool)
    n_frames = len(vocal) // hop
    frames = vocal[:n_frames * hop].reshape(n_frames, hop)
    energy_db = 10.0 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)
    active = energy_db >= np.percentile(energy_db, 95) - ACTIVE_WITHIN_DB
    mask = np.repeat(active, hop)
    return np.concatenate([mask, np.full(len(vocal) - len(mask), mask[-1])])  # the tail: as its last frame


def _check_existing(output_dir: Path, plan: list[tuple], settings: dict) -> dict[str, str]:
    """Mixes already in the folder must be the ones planned (same voice, music, ratio, vibrato settings): else two
    runs would mix. Returns the music each existing mix was made with (its manifest name), by id."""
    manifest = output_dir / "manifest.csv"
    recorded = {}
    if manifest.is_file():
        recorded = {row["id"]: row for row in csv.DictReader(open(manifest, newline=""))}
    settings_path = output_dir / SETTINGS_FILE
    before = read_settings(settings_path)
    made = [path for path, *_ in plan if path.exists()]
    if made and before != settings:
        made_with = ", ".join(f"--{key.replace('_', '-')} " + " ".join(f"{v:g}" for v in np.atleast_1d(value))
                              for key, value in before.items()) or "no vibrato"
        raise MelodyError(f"{output_dir} holds mixes made with other music settings ({made_with}); "
                          "use another -o, or the same settings to resume")
    for path, voice, track, ratio_db, *_ in plan:
        if not path.exists():
            continue
        row = recorded.get(path.stem)
        if row is None or (row["voice"], row["accompaniment"].split("+")[0], float(row["ratio_db"])) != (
                str(voice), str(track), round(ratio_db, 2)):
            raise MelodyError(f"{output_dir} holds mixes made with other settings (seed, voices or music): "
                              f"{path.name}; use another -o, or the same settings to resume")
    return {path.stem: recorded[path.stem]["accompaniment"] for path in made}


def analysis_label(voice_cache: SourceCache, voice: Path, n_samples: int) -> np.ndarray:
    """The WORLD analysis label (gated harvest f0, Hz, 0 = unvoiced) of a voice recording on the 10 ms grid."""
    analysis = voice_cache.voice(voice)
    f0 = np.where(labels.f0_to_class(analysis.f0) > 0, analysis.f0, 0.0)  # outside the label range: unvoiced
    return label_frames(f0, analysis.frame_period, n_samples, voice_cache.sample_rate)


def original_mixes(sources: Sources, pool: MusicPool, output_dir: Path, seed: int, mixes_per_voice: int,
                   sample_rate: int, progress: bool = True, split: str = "train",
                   voice_cache: SourceCache | None = None) -> list[dict]:
    """Mix every singing voice of ``split`` ``mixes_per_voice`` times over random pool excerpts of that split.

    With ``voice_cache`` (its WORLD analyses) each mix gets its analysis label, ``<id>.f0.txt``.
    Returns the manifest rows (also written to ``output_dir/manifest.csv``).
    """
    from tqdm import tqdm

    voices = [v for v in sources.voices[split] if not v.speech]
    music = pool.accompaniment[split]
    if not voices:
        raise MelodyError(f"no {split}-split singing voices found")
    if not music:
        raise MelodyError(f"the music pool has no screened instrumental tracks in its {split} split")
    prefix = "original" if split == "train" else f"original_{split}"  # train keeps its first names
    plan = []
    for index, voice in enumerate(voices):
        for k in range(mixes_per_voice):
            rng = np.random.default_rng([seed, index, k])
            track = Path(music[int(rng.integers(len(music)))])
            ratio_db = float(rng.uniform(*RATIO_DB))
            vibrato_rng = np.random.default_rng([seed, index, k, 2]) if sources.vibrato_share else None
            path = output_dir / f"{prefix}_{index:04d}_{k}.flac"
            plan.append((path, voice.path, track, ratio_db, rng, vibrato_rng))
    settings = vibrato_settings(sources)
    existing = _check_existing(output_dir, plan, settings)
    rows, loaded, vocal, settings_written = [], None, np.zeros(0, np.float32), False
    for path, voice, track, ratio_db, rng, vibrato_rng in tqdm(plan, desc="original mixes", unit="mix",
                                                               disable=not progress, file=sys.stderr):
        if voice != loaded:  # the plan is ordered by voice: each recording is decoded once
            loaded, vocal = voice, load_audio(voice, sample_rate)
        row = {"id": path.stem, "audio": path.name, "voice": str(voice),
               "accompaniment": existing.get(path.stem, str(track)),  # with a vibrato's mark, as made
               "ratio_db": round(ratio_db, 2), "seconds": round(len(vocal) / sample_rate, 3), "seed": seed}
        if voice_cache is not None:
            label_path = path.with_suffix(".f0.txt")
            if not label_path.exists():
                label = analysis_label(voice_cache, voice, len(vocal))
                write_text_atomic(ensure_output_dir(output_dir) / label_path.name, format_label(label))
            row.update(split=split, label=label_path.name)
        if not path.exists():
            ensure_output_dir(output_dir)  # only once a mix is made: a bad first voice leaves no folder
            if settings and not settings_written:  # before the first new mix, so an interrupted run is checked
                write_text_atomic(output_dir / SETTINGS_FILE, json.dumps(settings, indent=1) + "\n")
                settings_written = True
            accompaniment = pool_excerpt(rng, track, len(vocal), sample_rate)
            accompaniment, row["accompaniment"] = maybe_vibrato(vibrato_rng, accompaniment, str(track),
                                                                sample_rate, sources)
            mix, _ = mix_at_ratio(vocal, accompaniment, ratio_db, singing_frames(vocal, sample_rate))
            write_audio(path, mix, sample_rate)
        rows.append(row)
    fields = MANIFEST_FIELDS if voice_cache is None else LABELED_MANIFEST_FIELDS
    write_text_atomic(ensure_output_dir(output_dir) / "manifest.csv", csv_text(rows, fields))
    return rows
