"""A labeled training corpus (train/val/test splits, manifest.csv): new melodies sung with real voices, and
real singing re-sung with transposed f0, over real, soundfont and music-pool accompaniment; which voices and
recordings each split may use is decided here.

Every item is a mix and a label at 10 ms (``time f0`` lines, ``"%.2f %.4f"``, 0 = unvoiced) covering exactly
the frames the extractor produces for the mix. Items are deterministic in (seed, index), written atomically,
and a folder's existing complete items are kept, so a corpus grows or resumes.
"""

from __future__ import annotations

import csv
import ctypes
import json
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vocal_melody import features, labels
from vocal_melody.audio import load_audio
from vocal_melody.cache import ArrayCache
from vocal_melody.lab.corpora import music_pool
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import AUDIO_EXTENSIONS, csv_text, write_text_atomic
from vocal_melody.formats.writers import format_label
from vocal_melody.lab.synth import world
from vocal_melody.lab.synth.contours import VIBRATO_DEPTH_CENTS, expressive_f0, without_vibrato
from vocal_melody.lab.synth.melodies import Song, random_song
from vocal_melody.lab.synth.mixing import label_frames, mix_at_ratio, rms_db, voice_active, with_vibrato, write_audio
from vocal_melody.lab.synth.singing import sing
from vocal_melody.lab.synth.soundfont import Track, render


HELD_OUT_VOICES = {"test": ("vocadito_1", "csd_drmeter_fixture"),
                   "val": ("vocadito_14", "dcs_libf0_excerpt", "smstools_freesound_singing")}
"""Voice groups (file stems or folder names) kept out of training. vocadito_1 has a human label."""


CORPUS_VOICE_GROUPS = ("ssvd_v2",)
"""Folders among the voices that are corpora with splits of their own (``synth_testset.py ssvd``): never voice
material here, or their test recordings would train (and the corpora made before they came would change)."""


HELD_OUT_ACCOMPANIMENT = {"test": ("Brahms",), "val": ()}


VAL_PART_OF_RECORDING = 0.15
"""Training accompaniment recordings lend their last 15 % (in time) to the val split, so the voicing
threshold is chosen on real accompaniment the model has not heard."""


LEAD_PROBABILITY = 0.5
"""Share of soundfont accompaniments with a non-vocal melody line (labeled unvoiced)."""


INSTRUMENTAL_STRETCH_PROBABILITY = 0.35


INSTRUMENTAL_STRETCH_S = (2.0, 8.0)
"""Items with the voice muted for a while: accompaniment alone, where the model must say "no voice"."""


DISTRACTOR_PATTERN = "trumpet"
"""Accompaniment recordings with a melodic non-vocal lead: mixed in, labeled unvoiced."""


SPEECH_PATTERN = "speech"


SPLITS = ("train", "val", "test")


POOL_PROBABILITY = 0.55
"""With a music pool: share of sung items over a pool excerpt (the rest as without a pool)."""


POOL_STRETCH_PROBABILITY = 0.5


POOL_STRETCH_S = (2.0, 12.0)
"""With a music pool: more and longer stretches of accompaniment alone."""


POOL_DISTRACTOR_PROBABILITY = 0.2
"""With a music pool: share of sung items that also carry a lead-guitar stem, labeled unvoiced."""


INSTRUMENTAL_SHARE = 0.2
"""Default share of whole items of screened instrumental music (labeled unvoiced on every frame)."""


SILENT_EXCERPT_DB = -50.0


SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


CHORD_PROGRAMS = (0, 1, 4, 5, 16, 19, 24, 25, 26, 27, 46, 48, 49, 50, 88, 89, 90, 94)


BASS_PROGRAMS = (32, 33, 34, 35, 38, 39, 43)


LEAD_PROGRAMS = (40, 41, 56, 57, 60, 64, 65, 66, 68, 71, 73, 74, 80, 81)
"""Non-vocal melody instruments (violin, trumpet, sax, flute, synth leads...)."""


VIBRATO_LEAD_PROBABILITY = 0.5
"""Share of vibrato items whose vibrato is on an added soundfont lead line rather than on the whole excerpt."""


@dataclass
class VoiceSource:
    """One voice recording and the group (singer/folder) it belongs to."""

    path: Path
    group: str
    speech: bool


@dataclass
class Sources:
    """What the corpus is made from, per split."""

    voices: dict[str, list[VoiceSource]]
    accompaniments: dict[str, list[Path]]
    distractors: list[Path]
    pool: music_pool.MusicPool | None = None
    instrumental_share: float = 0.0
    instrumental_leads: bool = False
    """Instrumental items from the pool's lead-instrument stems only (where the split has them)."""
    vibrato_share: float = 0.0
    """Share of items whose music gets a sung-like vibrato (instrumental items stay unvoiced, sung items keep
    the voice's label)."""
    vibrato_cents: tuple[float, float] = VIBRATO_DEPTH_CENTS
    """Range of that vibrato's peak deviation."""
    plain_voice_share: float = 0.0
    """Share of sung items whose voice has no vibrato (new melodies sung straight, real contours smoothed): a voice
    is a voice without one."""
    held_out: dict[str, str] | None = None
    """Voice groups moved out of training because a held-out split had none (split -> group)."""


def _group_of(path: Path, root: Path) -> str:
    relative = path.relative_to(root)
    return relative.parts[0] if len(relative.parts) > 1 else path.name.split(".")[0]


def _held_out_split(name: str, table: dict[str, tuple[str, ...]], exact: bool) -> str:
    """The split a voice group (exact name: vocadito_1 is not vocadito_14) or recording (substring) belongs to."""
    for split, patterns in table.items():
        for pattern in patterns:
            if (pattern.lower() == name.lower()) if exact else (pattern.lower() in name.lower()):
                return split
    return "train"


def discover_sources(voice_dirs: Sequence[Path], accompaniment_dirs: Sequence[Path]) -> Sources:
    """Voices and accompaniments per split; groups never straddle splits."""
    voices: dict[str, list[VoiceSource]] = {split: [] for split in SPLITS}
    for root in voice_dirs:
        root = Path(root)
        if not root.is_dir():
            raise MelodyError(f"voice folder {root} not found")
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
                group = _group_of(path, root)
                if group in CORPUS_VOICE_GROUPS:
                    continue
                voices[_held_out_split(group, HELD_OUT_VOICES, exact=True)].append(
                    VoiceSource(path, group, SPEECH_PATTERN in path.name.lower()))
    accompaniments: dict[str, list[Path]] = {split: [] for split in SPLITS}
    distractors = []
    for root in accompaniment_dirs:
        root = Path(root)
        if not root.is_dir():
            raise MelodyError(f"accompaniment folder {root} not found")
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS):
            if DISTRACTOR_PATTERN in path.name.lower():
                distractors.append(path)
            else:
                accompaniments[_held_out_split(path.name, HELD_OUT_ACCOMPANIMENT, exact=False)].append(path)
    if not voices["train"]:
        raise MelodyError("no training voices found")
    held_out = hold_out_voices(voices)
    return Sources(voices, accompaniments, distractors, held_out=held_out)


def hold_out_voices(voices: dict[str, list[VoiceSource]]) -> dict[str, str]:
    """Give a held-out split without voices of its own the last training voice group (by name), in place.

    Splits never share a voice: with folders that hold none of the named
    held-out voices, whole groups move out of training instead. Returns
    split -> the group moved.
    """
    moved = {}
    for split in ("test", "val"):
        if voices[split]:
            continue
        groups = sorted({v.group for v in voices["train"]})
        if len(groups) < 2:
            raise MelodyError(f"the voice folders have no voices for the {split} split and too few voice groups "
                              f"({len(groups)}) to hold one out of training; give at least three files or "
                              "folders of voices")
        moved[split] = groups[-1]
        voices[split] = [v for v in voices["train"] if v.group == groups[-1]]
        voices["train"] = [v for v in voices["train"] if v.group != groups[-1]]
    return moved


class SourceCache:
    """Per-process cache of voice analyses and decoded accompaniments."""

    def __init__(self, cache_dir: Path, sample_rate: int) -> None:
        self.world_cache = ArrayCache(cache_dir / "world")
        self.sample_rate = sample_rate
        self._voices: dict[Path, world.WorldAnalysis] = {}
        self._audio: dict[Path, np.ndarray] = {}

    def voice(self, path: Path) -> world.WorldAnalysis:
        if path not in self._voices:
            if len(self._voices) > 24:
                self._voices.pop(next(iter(self._voices)))
            self._voices[path] = world.analyse_file(path, self.sample_rate, self.world_cache)
        return self._voices[path]

    def audio(self, path: Path) -> np.ndarray:
        if path not in self._audio:
            self._audio[path] = load_audio(path, self.sample_rate)
        return self._audio[path]


def _register(rng: np.random.Generator) -> tuple[float, float]:
    """A singer's comfortable range: male (about MIDI 45-67) or female (about 55-80)."""
    low = rng.uniform(45, 52) if rng.random() < 0.5 else rng.uniform(55, 62)
    return low, min(80.0, low + rng.uniform(12, 18))


def recording_part(audio: np.ndarray, split: str) -> np.ndarray:
    """The part of a training accompaniment recording a split may use (val: its last 15 % in time)."""
    cut = int(len(audio) * (1.0 - VAL_PART_OF_RECORDING))
    return audio[cut:] if split == "val" else audio[:cut]


def _excerpt(rng: np.random.Generator, audio: np.ndarray, n: int) -> np.ndarray:
    if len(audio) <= n:
        return np.resize(audio, n)
    start = int(rng.integers(0, len(audio) - n))
    return audio[start:start + n]


def pool_excerpt(rng: np.random.Generator, path: Path, n: int, sample_rate: int) -> np.ndarray:
    """A random excerpt of ``n`` samples of a pool track, read without decoding the rest; not silent if avoidable."""
    import soundfile
    import soxr

    info = soundfile.info(str(path))
    length = int(np.ceil(n * info.samplerate / sample_rate))
    for _ in range(5):  # game music has silent intros and endings
        start = int(rng.integers(0, max(1, info.frames - length)))
        audio, rate = soundfile.read(str(path), start=start, stop=start + length, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if rms_db(audio) > SILENT_EXCERPT_DB:
            break
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, quality="HQ").astype(np.float32)
    return np.resize(audio, n) if len(audio) < n else audio[:n]


def _instrumental_item(rng: np.random.Generator, split: str, seconds: float, sources: Sources,
                       sample_rate: int, vibrato_rng: np.random.Generator | None = None
                       ) -> tuple[np.ndarray, np.ndarray, dict]:
    """A whole item of screened instrumental music from the split's packages: unvoiced on every frame."""
    pool = sources.pool
    leads_only = sources.instrumental_leads and pool.distractors[split]
    tracks = pool.distractors[split] if leads_only else pool.accompaniment[split] + pool.distractors[split]
    path = tracks[int(rng.integers(len(tracks)))]
    n = int(round(seconds * sample_rate))
    audio = pool_excerpt(rng, path, n, sample_rate)
    name = f"{path.parent.name}/{path.name}"
    audio, name = maybe_vibrato(vibrato_rng, audio, name, sample_rate, sources)
    mix = (audio * 0.9 / max(float(np.max(np.abs(audio))), 1e-9)).astype(np.float32)
    label = np.zeros(features.n_frames_for(int(round(n * features.SAMPLE_RATE / sample_rate))))
    fields = {"kind": "instrumental", "voices": "", "accompaniment": name,
              "ratio_db": "", "seconds": round(n / sample_rate, 3)}
    return mix, label, fields


def vibrato_settings(sources: Sources) -> dict:
    """What a corpus folder records of its music's vibrato and its voices' lack of one (empty without either:
    folders made before the options stay resumable)."""
    settings: dict = {}
    if sources.vibrato_share:
        settings["vibrato_share"] = sources.vibrato_share
        if tuple(sources.vibrato_cents) != VIBRATO_DEPTH_CENTS:
            settings["vibrato_cents"] = list(sources.vibrato_cents)
    if sources.plain_voice_share:
        settings["plain_voice_share"] = sources.plain_voice_share
    return settings


def maybe_vibrato(rng: np.random.Generator | None, audio: np.ndarray, name: str, sample_rate: int,
                  sources: Sources) -> tuple[np.ndarray, str]:
    """(audio, manifest name) of music given a sung-like vibrato on ``sources.vibrato_share`` of the calls:
    on the whole music, or on a soundfont lead line added over it; unchanged otherwise."""
    if rng is None or rng.random() >= sources.vibrato_share:
        return audio, name
    depth_cents = sources.vibrato_cents
    if rng.random() < VIBRATO_LEAD_PROBABILITY:
        seconds = len(audio) / sample_rate
        lead = Track(int(rng.choice(LEAD_PROGRAMS)))
        lead.notes = [(n.onset, n.duration, int(n.midi), int(rng.integers(60, 100)))
                      for n in random_song(rng, seconds, (60, 84)).notes]
        played = with_vibrato(render([lead], seconds, sample_rate), sample_rate, rng, depth_cents)
        level_db = rms_db(audio) - rms_db(played) + rng.uniform(0.0, 8.0)  # a melody above its backing
        return audio + played * 10.0 ** (level_db / 20.0), f"{name}+vibrato-lead-gm{lead.program}"
    return with_vibrato(audio, sample_rate, rng, depth_cents), f"{name}+vibrato"


def mute_stretch(vocal: np.ndarray, label_f0: np.ndarray, start_s: float, seconds: float,
                 sample_rate: int, frame_period_ms: float = world.FRAME_PERIOD_MS,
                 fade_s: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Silence the voice for ``seconds`` from ``start_s`` (short fades), and its label with it."""
    vocal, label_f0 = vocal.copy(), label_f0.copy()
    first, last = int(start_s * sample_rate), int((start_s + seconds) * sample_rate)
    first, last = max(0, first), min(len(vocal), last)
    if last <= first:
        return vocal, label_f0
    gain = np.zeros(last - first)
    fade = min(int(fade_s * sample_rate), (last - first) // 2)
    if fade:
        ramp = np.linspace(1.0, 0.0, fade)
        gain[:fade], gain[-fade:] = ramp, ramp[::-1]
    vocal[first:last] *= gain
    # every label frame that overlaps the faded region becomes unvoiced
    frame_s = frame_period_ms / 1000.0
    label_f0[max(0, int(np.floor(first / sample_rate / frame_s))):int(np.ceil(last / sample_rate / frame_s)) + 1] = 0.0
    return vocal, label_f0


def _rendered_accompaniment(rng: np.random.Generator, song: Song | None, seconds: float,
                            sample_rate: int) -> tuple[np.ndarray, str]:
    """Soundfont accompaniment (chords, bass, maybe drums and a non-vocal lead line)."""
    if song is None:
        song = random_song(rng, seconds, (55, 75))
    chord_track = Track(int(rng.choice(CHORD_PROGRAMS)))
    bass_track = Track(int(rng.choice(BASS_PROGRAMS)))
    beat = song.beat_s
    arpeggio = rng.random() < 0.4
    for onset, duration, keys in song.chords:
        octave = 12 * int(rng.integers(0, 2))
        if arpeggio:
            for step in range(int(round(duration / (beat / 2)))):
                key = keys[step % len(keys)] + 12 + octave
                chord_track.notes.append((onset + step * beat / 2, beat / 2, key, int(rng.integers(50, 80))))
        else:
            for key in keys:
                chord_track.notes.append((onset, duration * 0.95, key + 12 + octave, int(rng.integers(45, 75))))
        root = keys[0] - 12 if keys[0] >= 40 else keys[0]
        for beat_index in range(int(round(duration / beat))):
            if beat_index % 2 == 0 or rng.random() < 0.3:
                key = root + (7 if beat_index % 4 == 2 and rng.random() < 0.5 else 0)
                bass_track.notes.append((onset + beat_index * beat, beat * 0.9, key, int(rng.integers(70, 100))))
    tracks = [chord_track, bass_track]
    parts = [f"gm{chord_track.program}", f"gm{bass_track.program}"]
    if rng.random() < 0.7:
        drums = Track(0, drums=True)
        for index in range(int(seconds / (beat / 2))):
            time = index * beat / 2
            if index % 4 == 0:
                drums.notes.append((time, 0.1, 36, 100))
            if index % 4 == 2:
                drums.notes.append((time, 0.1, int(rng.choice([38, 40])), 90))
            drums.notes.append((time, 0.05, int(rng.choice([42, 42, 46])), int(rng.integers(40, 70))))
        tracks.append(drums)
        parts.append("drums")
    if rng.random() < LEAD_PROBABILITY:
        lead = Track(int(rng.choice(LEAD_PROGRAMS)))
        line = random_song(rng, seconds, (60, 84))
        lead.notes = [(n.onset, n.duration, int(n.midi), int(rng.integers(60, 100))) for n in line.notes]
        tracks.append(lead)
        parts.append(f"lead-gm{lead.program}")
    return render(tracks, seconds, sample_rate), "+".join(parts)


def _resung_voice(rng: np.random.Generator, sources: list[VoiceSource], cache: SourceCache,
                  seconds: float, plain: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Real singing with its own contour (``plain``: its vibrato smoothed away), transposed and resynthesized
    (exact label), filling ``seconds``."""
    rate = cache.sample_rate
    n = int(seconds * 1000 / world.FRAME_PERIOD_MS)
    f0 = np.zeros(n)
    sp, ap = None, None
    used = []
    position = int(rng.integers(0, int(1.5 * 1000 / world.FRAME_PERIOD_MS)))
    singing = [s for s in sources if not s.speech] or sources
    while position < n - 40:
        source = singing[int(rng.integers(len(singing)))]
        analysis = cache.voice(source.path)
        if sp is None:
            sp = np.full((n, analysis.sp.shape[1]), 1e-12)
            ap = np.ones((n, analysis.ap.shape[1]))
        transpose = rng.uniform(-5, 5)
        length = min(len(analysis.f0), n - position)
        contour = analysis.f0[:length]
        if plain:
            contour = without_vibrato(contour, analysis.frame_period / 1000.0)
        piece_f0 = contour * 2.0 ** (transpose / 12.0)
        f0[position:position + length] = np.where(labels.f0_to_class(piece_f0) > 0, piece_f0, 0.0)
        ratio = float(np.clip(2.0 ** (transpose / 12.0 * 0.3) * rng.uniform(0.93, 1.07), 0.8, 1.25))
        sp[position:position + length] = world.warp_envelope(analysis.sp[:length], ratio)
        ap[position:position + length] = analysis.ap[:length]
        used.append(f"{source.group}/{source.path.name}")
        position += length + int(rng.uniform(0.3, 2.0) * 1000 / world.FRAME_PERIOD_MS)
    audio = world.synthesize(f0, sp, ap, rate, world.FRAME_PERIOD_MS)
    return audio, f0, used


def compose_item(index: int, split: str, seed: int, seconds: float, sources: Sources,
                 cache: SourceCache) -> tuple[np.ndarray, np.ndarray, dict]:
    """One corpus item: ``(mix, label on the 10 ms grid, manifest fields)``; deterministic in (seed, index)."""
    rng = np.random.default_rng([seed, index])
    rate = cache.sample_rate
    pool = sources.pool
    # pool decisions draw from their own stream: corpora made without a pool stay as they were
    pool_rng = np.random.default_rng([seed, index, 1]) if pool is not None else None
    # and so do vibrato decisions: corpora made without it stay as they were
    vibrato_rng = np.random.default_rng([seed, index, 2]) if sources.vibrato_share > 0 else None
    plain_voice = (sources.plain_voice_share > 0
                   and np.random.default_rng([seed, index, 3]).random() < sources.plain_voice_share)
    pool_tracks = pool.accompaniment[split] if pool is not None else []
    if pool is not None and (pool_tracks or pool.distractors[split]) \
            and pool_rng.random() < sources.instrumental_share:
        return _instrumental_item(pool_rng, split, seconds, sources, rate, vibrato_rng)
    kind, vocal, label_f0, voice_names, song = _voice_part(rng, sources.voices[split], cache, seconds, plain_voice)
    n = int(round(seconds * rate))
    seconds = n / rate
    vocal = np.pad(vocal, (0, max(0, n - len(vocal))))[:n]
    label_f0 = label_f0.copy()
    if pool is not None and pool_tracks:
        if pool_rng.random() < POOL_STRETCH_PROBABILITY:
            stretch = min(float(pool_rng.uniform(*POOL_STRETCH_S)), 0.6 * seconds)  # the voice keeps a part
            vocal, label_f0 = mute_stretch(vocal, label_f0,
                                           float(pool_rng.uniform(0.0, max(0.0, seconds - stretch))), stretch, rate)
    elif rng.random() < INSTRUMENTAL_STRETCH_PROBABILITY:
        stretch = float(rng.uniform(*INSTRUMENTAL_STRETCH_S))
        vocal, label_f0 = mute_stretch(vocal, label_f0, float(rng.uniform(0.0, max(0.0, seconds - stretch))),
                                       stretch, rate)
    accompaniment, accompaniment_name = _accompaniment_part(rng, pool_rng, split, n, song, seconds, sources, cache)
    # an instrument with vibrato beside the voice, and alone in its rests
    accompaniment, accompaniment_name = maybe_vibrato(vibrato_rng, accompaniment, accompaniment_name, rate, sources)
    ratio_db = float(rng.uniform(-5.0, 10.0))
    active = voice_active(label_f0, world.FRAME_PERIOD_MS, n, rate)
    if not active.any():
        active = None
    mix, _ = mix_at_ratio(vocal, accompaniment, ratio_db, active)
    label = label_frames(label_f0, world.FRAME_PERIOD_MS, len(mix), rate)
    fields = {"kind": f"{kind}-plain" if plain_voice else kind, "voices": ";".join(voice_names),
              "accompaniment": accompaniment_name,
              "ratio_db": round(ratio_db, 2), "seconds": round(len(mix) / rate, 3)}
    return mix, label, fields


def _voice_part(rng: np.random.Generator, voices: list[VoiceSource], cache: SourceCache, seconds: float,
                plain: bool = False) -> tuple[str, np.ndarray, np.ndarray, list[str], Song | None]:
    """(kind, vocal, its f0 on WORLD's grid, voice names, the song or None): a new melody sung by a real
    voice, or real singing re-sung with transposed f0; ``plain``: without a vibrato (the same draws otherwise)."""
    lead_in = float(rng.uniform(0.0, 4.0)) if rng.random() < 0.4 else float(rng.uniform(0.0, 0.5))
    lead_in = min(lead_in, 0.5 * seconds)  # a short item still has a note (binds only below 8 s)
    if rng.random() >= 0.55:
        vocal, label_f0, voice_names = _resung_voice(rng, voices, cache, seconds, plain)
        return "resung", vocal, label_f0, voice_names, None
    source = voices[int(rng.integers(len(voices)))]
    song = random_song(rng, seconds, _register(rng), start_s=lead_in)
    frame_period = world.FRAME_PERIOD_MS
    n_frames = int(seconds * 1000 / frame_period) + 1
    depth = (0.0, 0.0) if plain else VIBRATO_DEPTH_CENTS  # a zero depth keeps the draws of the melody
    target = expressive_f0(song.notes, frame_period / 1000.0, rng, n_frames=n_frames, vibrato_depth=depth)
    target = np.where(labels.f0_to_class(target) > 0, target, 0.0)
    onsets = np.array([int(np.ceil(n.onset * 1000 / frame_period)) for n in song.notes])
    analysis = cache.voice(source.path)
    voiced_f0 = analysis.f0[analysis.voiced]
    register_shift = np.median(labels.hz_to_midi(target[target > 0])) - np.median(labels.hz_to_midi(voiced_f0))
    ratio = float(np.clip(2.0 ** (register_shift / 12.0 * 0.25) * rng.uniform(0.92, 1.08), 0.8, 1.25))
    vocal, label_f0 = sing(analysis, target, onsets, rng, formant_ratio=ratio)
    return "sung", vocal, label_f0, [f"{source.group}/{source.path.name}"], song


def _accompaniment_part(rng: np.random.Generator, pool_rng: np.random.Generator | None, split: str, n: int,
                        song: Song | None, seconds: float, sources: Sources,
                        cache: SourceCache) -> tuple[np.ndarray, str]:
    """(accompaniment of ``n`` samples, its manifest name): pool music, a recording or a soundfont rendering,
    with a distractor instrument on some items."""
    rate = cache.sample_rate
    pool = sources.pool
    pool_tracks = pool.accompaniment[split] if pool is not None else []
    recordings, part = sources.accompaniments[split], None
    if split == "train":
        part = "train"
    elif split == "val" and not recordings:  # borrow the unheard end of the training recordings
        recordings, part = sources.accompaniments["train"], "val"
    if pool_tracks and pool_rng.random() < POOL_PROBABILITY:
        path = pool_tracks[int(pool_rng.integers(len(pool_tracks)))]
        accompaniment = pool_excerpt(pool_rng, path, n, rate)
        accompaniment_name = f"{path.parent.name}/{path.name}"
    elif recordings and rng.random() < 0.45:
        path = recordings[int(rng.integers(len(recordings)))]
        audio = cache.audio(path)
        accompaniment = _excerpt(rng, recording_part(audio, part) if part else audio, n)
        accompaniment_name = path.name
    else:
        accompaniment, accompaniment_name = _rendered_accompaniment(rng, song, seconds, rate)
    if split == "train" and sources.distractors and rng.random() < 0.15:
        path = sources.distractors[int(rng.integers(len(sources.distractors)))]
        distractor = _excerpt(rng, cache.audio(path), n)
        level_db = rms_db(accompaniment) - rms_db(distractor) + rng.uniform(-3.0, 6.0)
        accompaniment = accompaniment + distractor * 10.0 ** (level_db / 20.0)
        accompaniment_name += f"+{path.name}"
    if pool is not None and pool.distractors[split] and pool_rng.random() < POOL_DISTRACTOR_PROBABILITY:
        path = pool.distractors[split][int(pool_rng.integers(len(pool.distractors[split])))]
        distractor = pool_excerpt(pool_rng, path, n, rate)
        level_db = rms_db(accompaniment) - rms_db(distractor) + pool_rng.uniform(-3.0, 6.0)
        accompaniment = accompaniment + distractor * 10.0 ** (level_db / 20.0)
        accompaniment_name += f"+{path.parent.name}/{path.name}"
    return accompaniment, accompaniment_name


def _plan(minutes: float, seed: int) -> list[tuple[int, str, float]]:
    """(index, split, seconds) of every item, fixed by the seed alone; every split has an item when it can."""
    rng = np.random.default_rng([seed, 2**31 - 1])
    plan, total = [], 0.0
    splits = list(SPLIT_FRACTIONS)
    weights = np.array([SPLIT_FRACTIONS[s] for s in splits])
    while total < minutes * 60.0:
        seconds = float(rng.uniform(15.0, 30.0))
        split = splits[int(rng.choice(len(splits), p=weights / weights.sum()))]
        plan.append((len(plan), split, seconds))
        total += seconds
    # a small corpus still gets val and test items (the last items move; larger plans are unchanged)
    missing = [split for split in splits if split != "train" and all(item[1] != split for item in plan)]
    trains = [i for i, item in enumerate(plan) if item[1] == "train"]
    if len(trains) > len(missing):
        for split, position in zip(missing, reversed(trains)):
            index, _, seconds = plan[position]
            plan[position] = (index, split, seconds)
    return plan


_WORKER: dict = {}


def _die_with_parent() -> None:
    """Linux: a worker ends when its parent does (killed, even with SIGKILL), not one item later."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still applies
        pass


def _init_worker(sources: Sources, cache_dir: Path, sample_rate: int, worker_process: bool = False) -> None:
    if worker_process:
        _die_with_parent()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER["sources"] = sources
    _WORKER["cache"] = SourceCache(cache_dir, sample_rate)


def _make_item(task: tuple[int, str, float, int, Path]) -> dict:
    index, split, seconds, seed, output_dir = task
    item_id = f"{split}_{index:05d}"
    folder = output_dir / split
    sidecar = folder / f"{item_id}.json"
    if sidecar.exists():  # written last: the item is complete
        return json.loads(sidecar.read_text())
    mix, label, fields = compose_item(index, split, seed, seconds, _WORKER["sources"], _WORKER["cache"])
    rate = _WORKER["cache"].sample_rate
    write_audio(folder / f"{item_id}.flac", mix, rate)
    write_text_atomic(folder / f"{item_id}.f0.txt", format_label(label))
    row = {"id": item_id, "split": split, "audio": f"{split}/{item_id}.flac",
           "label": f"{split}/{item_id}.f0.txt", **fields, "seed": seed}
    write_text_atomic(sidecar, json.dumps(row))
    return row


MIN_VOICED_SHARE = 0.05
"""A voice file must be voiced on this share of its frames (WORLD's gated f0) to sing with."""


def _analyse_voice(path: Path) -> None:
    analysis = _WORKER["cache"].voice(path)
    if analysis.voiced.mean() < MIN_VOICED_SHARE:
        raise MelodyError(f"{path}: no singing or speech found in this voice file ({analysis.voiced.mean():.0%} of "
                          "frames voiced); remove it from the --voices folders")


MANIFEST_FIELDS = ("id", "split", "audio", "label", "kind", "voices", "accompaniment", "ratio_db", "seconds", "seed")


def write_manifest(path: Path, rows: list[dict]) -> None:
    """The corpus manifest as CSV (paths relative to the manifest's folder)."""
    write_text_atomic(path, csv_text(sorted(rows, key=lambda r: r["id"]), MANIFEST_FIELDS))


def make_items(sources: Sources, tasks: list[tuple], cache_dir: Path, sample_rate: int, workers: int,
               progress: bool = True) -> list[dict]:
    """Check every voice file, then make (or find complete) every item; manifest rows in the order they finish.

    ``tasks``: ``(index, split, seconds, seed, output_dir)``. With several ``workers``, forked processes
    share the WORLD analyses through the cache and end with their parent.
    """
    from tqdm import tqdm

    all_voices = sorted({v.path for split in SPLITS for v in sources.voices[split]})
    init = (sources, cache_dir, sample_rate)
    if workers > 1:
        pool = multiprocessing.get_context("fork").Pool(workers, _init_worker, (*init, True))
        mapper = lambda fn, items: pool.imap_unordered(fn, items)  # noqa: E731
    else:
        pool = None
        _init_worker(*init)
        mapper = map
    try:
        list(tqdm(mapper(_analyse_voice, all_voices), total=len(all_voices), desc="voices (WORLD)",
                  unit="file", disable=not progress, file=sys.stderr))
        return list(tqdm(mapper(_make_item, tasks), total=len(tasks), desc="items", unit="item",
                         disable=not progress, file=sys.stderr))
    finally:
        if pool is not None:
            pool.terminate()


def plan_tasks(minutes: float, seed: int, output_dir: Path, splits: Sequence[str] | None = None) -> list[tuple]:
    """``(index, split, seconds, seed, output_dir)`` of the corpus's items (only ``splits``'s, if given)."""
    plan = [item for item in _plan(minutes, seed) if item[1] in (splits or SPLITS)]
    return [(index, split, seconds, seed, output_dir) for index, split, seconds in plan]


def read_settings(path: Path) -> dict:
    """A folder's recorded settings (a JSON object; empty when there is no such file)."""
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise MelodyError(f"{path}: not a settings file ({error}); remove it or use another -o") from None
    if not isinstance(settings, dict):
        raise MelodyError(f"{path}: not a settings file (not a JSON object); remove it or use another -o")
    return settings


def check_corpus_settings(folder: Path, settings: dict) -> None:
    """A folder holds one corpus: adding items made with other settings (a new seed...) would mix two."""
    recorded = folder / "compose.json"
    if recorded.is_file():
        before = read_settings(recorded)
        changed = [key for key in {**before, **settings} if before.get(key) != settings.get(key)]  # either way
        if changed:
            raise MelodyError(f"{folder} holds a corpus made with other settings ({', '.join(changed)}: "
                              f"{', '.join(str(before.get(k)) for k in changed)}); use another -o, or the same "
                              "settings to grow or resume it")
    elif (folder / "manifest.csv").is_file():
        seeds = {row.get("seed") for row in csv.DictReader(open(folder / "manifest.csv", newline=""))}
        if seeds - {str(settings["seed"])}:
            raise MelodyError(f"{folder} holds a corpus made with --seed {', '.join(sorted(map(str, seeds)))}; "
                              "use another -o or the same seed")


def accompaniment_kind(row: dict) -> str:
    """What a manifest row's accompaniment is: a pool kind (instrumental-only items apart), soundfont or recording."""
    first = str(row["accompaniment"]).split("+")[0]
    if "/" in first:
        package = first.split("/")[0]
        kind = music_pool.PACKAGES[package].kind if package in music_pool.PACKAGES else "other"
        return f"instrumental only ({kind})" if row["kind"] == "instrumental" else f"pool {kind}"
    return "soundfont" if first.startswith("gm") else "recording"
