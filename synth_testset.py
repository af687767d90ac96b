"""Labeled vocal-melody data by synthesis, with exact f0 labels.

Modes:

- ``anasyn`` (the paper's method): a vocal stem is analysed with WORLD
  (gated harvest f0, envelope, aperiodicity), resynthesized with exactly
  that f0 and remixed with its accompaniment.
- ``compose``: a training corpus (train/val/test splits, manifest.csv) of
  new melodies sung with real voices, and of real singing re-sung with
  transposed f0, over real and soundfont accompaniment.
- ``demo``: the project's demo song (``audio/demo_song.wav`` and its label),
  made only from material the project may redistribute: an espeak-ng voice
  shaped by WORLD onto a public-domain melody, with soundfont accompaniment.

Every item is written as a mix, and a label at 10 ms (``time f0`` lines,
``"%.2f %.4f"``, 0 = unvoiced) covering exactly the frames the extractor
produces for the mix.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

import featureExtraction as features
from melody import argtypes, labels, music_pool, world
from melody.audio import load_audio
from melody.cache import ArrayCache
from melody.contours import Note, expressive_f0
from melody.errors import MelodyError, OneLineParser, run_cli
from melody.fileio import AUDIO_EXTENSIONS, ensure_output_dir, write_sound_atomic, write_text_atomic
from melody.melodies import Song, random_song
from melody.singing import sing
from melody.writers import format_label
from melody.soundfont import Track, render

SYNTH_RATE = 16000
"""Sample rate of synthesized material: twice what the model sees, cheap for WORLD."""
LABEL_HOP_S = features.FRAME_SECONDS


# ----------------------------------------------------------------------------- shared pieces

def rms_db(audio: np.ndarray, active: np.ndarray | None = None) -> float:
    """RMS level in dB of ``audio`` (only where ``active``, e.g. where the voice sings)."""
    samples = audio if active is None else audio[active]
    return 10.0 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-12)


def mix_at_ratio(vocal: np.ndarray, accompaniment: np.ndarray, ratio_db: float,
                 vocal_active: np.ndarray | None = None, peak: float = 0.9) -> tuple[np.ndarray, float]:
    """Mix so the vocal (while singing) is ``ratio_db`` above the accompaniment; peak-normalise.

    Returns the mix and the gain applied to the accompaniment.
    """
    n = min(len(vocal), len(accompaniment))
    vocal, accompaniment = vocal[:n], accompaniment[:n]
    active = None if vocal_active is None else vocal_active[:n]
    gain = 10.0 ** ((rms_db(vocal, active) - ratio_db - rms_db(accompaniment)) / 20.0)
    mix = vocal + gain * accompaniment
    scale = peak / max(np.max(np.abs(mix)), 1e-9)
    return (mix * scale).astype(np.float32), gain * scale


def label_frames(f0: np.ndarray, frame_period_ms: float, n_samples: int, sample_rate: int) -> np.ndarray:
    """The label on the extractor's 10 ms grid for audio of ``n_samples`` at ``sample_rate``."""
    n_samples_8k = int(round(n_samples * features.SAMPLE_RATE / sample_rate))
    return world.f0_on_grid(f0, frame_period_ms, features.n_frames_for(n_samples_8k), LABEL_HOP_S)


def write_audio(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit audio (format from the suffix) atomically."""
    write_sound_atomic(path, audio, sample_rate, subtype="PCM_16")


def voice_active(label_f0: np.ndarray, frame_period_ms: float, n_samples: int, sample_rate: int) -> np.ndarray:
    """Sample mask of the voiced frames of a label (for vocal-level measurements)."""
    frame = np.minimum((np.arange(n_samples) / sample_rate * 1000.0 / frame_period_ms).astype(int),
                       len(label_f0) - 1)
    return label_f0[frame] > 0


# ----------------------------------------------------------------------------- demo song

TWINKLE_C = [  # (scale degree as MIDI in C, beats) - "Twinkle, Twinkle, Little Star", public domain
    (60, 1), (60, 1), (67, 1), (67, 1), (69, 1), (69, 1), (67, 2),
    (65, 1), (65, 1), (64, 1), (64, 1), (62, 1), (62, 1), (60, 2),
    (67, 1), (67, 1), (65, 1), (65, 1), (64, 1), (64, 1), (62, 2),
    (67, 1), (67, 1), (65, 1), (65, 1), (64, 1), (64, 1), (62, 2),
    (60, 1), (60, 1), (67, 1), (67, 1), (69, 1), (69, 1), (67, 2),
    (65, 1), (65, 1), (64, 1), (64, 1), (62, 1), (62, 1), (60, 2),
]
TWINKLE_CHORDS_C = "C C F C F C G C C F C G C F C G C C F C F C G C".split()  # one per two beats
TWINKLE_LYRICS = ("Twinkle twinkle little star, how I wonder what you are. "
                  "Up above the world so high, like a diamond in the sky. "
                  "Twinkle twinkle little star, how I wonder what you are.")
CHORD_ROOTS = {"C": 48, "F": 53, "G": 55}
MAJOR_TRIAD = (0, 4, 7)


def speak(text: str, voice: str = "en-us", sample_rate: int = SYNTH_RATE) -> np.ndarray:
    """Speech from espeak-ng (Debian package) at ``sample_rate``."""
    import soundfile
    import soxr

    if shutil.which("espeak-ng") is None:
        raise MelodyError("the demo voice needs espeak-ng: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "110", "-w", str(wav), text], check=True,
                       capture_output=True)
        speech, rate = soundfile.read(str(wav), dtype="float64")
    return soxr.resample(speech, rate, sample_rate)


def demo_song(seed: int = 0, transpose: int = 5, beat_s: float = 0.55,
              ratio_db: float = 6.0) -> tuple[np.ndarray, np.ndarray, int]:
    """The demo song: (mix at 16 kHz, label on the 10 ms grid, sample rate)."""
    rng = np.random.default_rng(seed)
    intro = 4 * beat_s
    notes, onset = [], intro
    for index, (midi, beats) in enumerate(TWINKLE_C):
        phrase_end = index % 7 == 6
        duration = beats * beat_s * (0.75 if phrase_end else 1.0)  # breathe at phrase ends
        notes.append(Note(onset, duration, midi + transpose))
        onset += beats * beat_s
    seconds = onset + 2 * beat_s
    frame_period = world.FRAME_PERIOD_MS
    n_frames = int(seconds * 1000 / frame_period) + 1
    target = expressive_f0(notes, frame_period / 1000.0, rng, n_frames=n_frames, vibrato_depth=(20, 45))
    onsets = np.array([int(np.ceil(n.onset * 1000 / frame_period)) for n in notes])
    voice = world.analyse(speak(TWINKLE_LYRICS, "en-us+f3"), SYNTH_RATE)
    vocal, label = sing(voice, target, onsets, rng, formant_ratio=1.08, consonant_probability=0.9)

    chords = Track(program=0)
    bass = Track(program=32)
    drums = Track(program=0, drums=True)
    for bar, chord in enumerate(TWINKLE_CHORDS_C):
        start = intro + 2 * bar * beat_s
        root = CHORD_ROOTS[chord] + transpose
        for offset in MAJOR_TRIAD:
            chords.notes.append((start, 2 * beat_s * 0.95, root + 12 + offset, 58))
        bass.notes.append((start, beat_s * 0.9, root - 12, 90))
        bass.notes.append((start + beat_s, beat_s * 0.9, root - 12 + 7, 80))
    for beat in range(int((seconds - beat_s) / beat_s)):
        start = beat * beat_s
        drums.notes.append((start, 0.1, 36 if beat % 2 == 0 else 38, 90 if beat >= 4 else 60))
        drums.notes.append((start + beat_s / 2, 0.05, 42, 50))
    accompaniment = render([chords, bass, drums], len(vocal) / SYNTH_RATE, SYNTH_RATE)
    active = voice_active(label, frame_period, len(vocal), SYNTH_RATE)
    mix, _ = mix_at_ratio(vocal, accompaniment, ratio_db, active)
    return mix, label_frames(label, frame_period, len(mix), SYNTH_RATE), SYNTH_RATE


def run_demo(args: argparse.Namespace) -> int:
    output_dir = ensure_output_dir(args.output_dir)
    mix, label, rate = demo_song(seed=args.seed)
    write_audio(output_dir / "demo_song.wav", mix, rate)
    write_text_atomic(output_dir / "demo_song.f0.txt", format_label(label))
    voiced = label > 0
    print(f"wrote {output_dir / 'demo_song.wav'} ({len(mix) / rate:.1f} s, "
          f"{voiced.mean():.0%} voiced, f0 {label[voiced].min():.0f}-{label[voiced].max():.0f} Hz) "
          f"and {output_dir / 'demo_song.f0.txt'}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- anasyn (the paper's method)

def read_streams(path: Path, streams: Sequence[int], sample_rate: int) -> np.ndarray:
    """Sum of the given audio streams of a file, mono at ``sample_rate``."""
    parts = [load_audio(path, sample_rate, stream) for stream in streams]
    n = min(len(p) for p in parts)
    if max(len(p) for p in parts) - n > sample_rate // 10:
        raise MelodyError(f"{path}: streams {list(streams)} differ in length")
    return np.sum([p[:n] for p in parts], axis=0).astype(np.float32)


def anasyn(vocal: np.ndarray, accompaniment: np.ndarray | None, sample_rate: int,
           ratio_db: float | None = None, transpose: float = 0.0, name: str = "vocal",
           rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analysis-synthesis of a vocal stem: ``(mix, resynthesized vocal, label on the 10 ms grid)``.

    The vocal is analysed with WORLD (gated harvest f0, CheapTrick, D4C),
    resynthesized with exactly that f0 (optionally transposed by
    ``transpose`` semitones, envelope kept) and mixed with the accompaniment
    at the original vocal level, or at ``ratio_db`` vocal-to-accompaniment.
    """
    analysis = world.analyse(vocal, sample_rate)
    if analysis.voiced.mean() < 0.01:
        raise MelodyError(f"{name}: no voice found in the vocal stem "
                          f"({analysis.voiced.sum()} voiced frames of {len(analysis.f0)})")
    f0 = analysis.f0 * 2.0 ** (transpose / 12.0)
    f0 = np.where(labels.f0_to_class(f0) > 0, f0, 0.0)  # outside the label range: unvoiced
    resynth = world.synthesize(f0, analysis.sp, analysis.ap, sample_rate, analysis.frame_period)[:len(vocal)]
    resynth = np.pad(resynth, (0, len(vocal) - len(resynth)))
    active = voice_active(f0, analysis.frame_period, len(resynth), sample_rate)
    resynth *= 10.0 ** ((rms_db(vocal, active) - rms_db(resynth, active)) / 20.0)  # original level
    if accompaniment is None:
        mix = resynth
    elif ratio_db is None:
        mix = resynth + accompaniment[:len(resynth)]
    else:
        mix, _ = mix_at_ratio(resynth, accompaniment, ratio_db, active, peak=2.0)
    peak = max(np.max(np.abs(mix)), 1e-9)
    scale = min(1.0, 0.95 / peak)  # avoid clipping, keep relative levels
    return ((mix * scale).astype(np.float32), (resynth * scale).astype(np.float32),
            label_frames(f0, analysis.frame_period, len(mix), sample_rate))


def run_anasyn(args: argparse.Namespace) -> int:
    vocal_path = Path(args.vocal)
    name = args.name or vocal_path.name.split(".")[0]
    if Path(name).name != name or name in ("", ".", ".."):
        raise MelodyError(f"--name {name!r}: a plain file-name prefix, without folders, is needed")
    rate = args.sample_rate
    vocal = load_audio(vocal_path, rate, args.vocal_stream)
    accompaniment = None
    if args.accompaniment or args.accompaniment_streams:
        accompaniment_path = Path(args.accompaniment or args.vocal)
        streams = [int(s) for s in (args.accompaniment_streams or "0").split(",")]
        accompaniment = read_streams(accompaniment_path, streams, rate)
        if not args.loop_accompaniment:
            difference = abs(len(accompaniment) - len(vocal)) / rate
            if difference > 0.1:
                raise MelodyError(f"vocal ({len(vocal) / rate:.2f} s) and accompaniment "
                                  f"({len(accompaniment) / rate:.2f} s) differ in length; "
                                  "pass --loop-accompaniment to loop or cut the accompaniment")
        accompaniment = np.resize(accompaniment, len(vocal))
    output_dir = ensure_output_dir(args.output_dir)
    mix, resynth, label = anasyn(vocal, accompaniment, rate, args.ratio_db, args.transpose, str(vocal_path))
    write_audio(output_dir / f"{name}_mix.wav", mix, rate)
    write_audio(output_dir / f"{name}_vocal.wav", resynth, rate)
    write_text_atomic(output_dir / f"{name}.f0.txt", format_label(label))
    print(f"wrote {name}_mix.wav, {name}_vocal.wav and {name}.f0.txt to {output_dir} "
          f"({len(mix) / rate:.1f} s, {np.mean(label > 0):.0%} voiced)", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- compose (training corpus)

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
DEFAULT_VOICE_DIRS = (SHARED_DATA / "voice", SHARED_DATA / "voice_research")
DEFAULT_ACCOMPANIMENT_DIRS = (SHARED_DATA / "accompaniment",)
HELD_OUT_VOICES = {"test": ("vocadito_1", "csd_drmeter_fixture"),
                   "val": ("vocadito_14", "dcs_libf0_excerpt", "smstools_freesound_singing")}
"""Voice groups (file stems or folder names) kept out of training. vocadito_1 has a human label."""
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
                       sample_rate: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """A whole item of screened instrumental music from the split's packages: unvoiced on every frame."""
    pool = sources.pool
    tracks = pool.accompaniment[split] + pool.distractors[split]
    path = tracks[int(rng.integers(len(tracks)))]
    n = int(round(seconds * sample_rate))
    audio = pool_excerpt(rng, path, n, sample_rate)
    mix = (audio * 0.9 / max(float(np.max(np.abs(audio))), 1e-9)).astype(np.float32)
    label = np.zeros(features.n_frames_for(int(round(n * features.SAMPLE_RATE / sample_rate))))
    fields = {"kind": "instrumental", "voices": "", "accompaniment": f"{path.parent.name}/{path.name}",
              "ratio_db": "", "seconds": round(n / sample_rate, 3)}
    return mix, label, fields


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
                  seconds: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Real singing with its own contour, transposed and resynthesized (exact label), filling ``seconds``."""
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
        piece_f0 = analysis.f0[:length] * 2.0 ** (transpose / 12.0)
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
    pool_tracks = pool.accompaniment[split] if pool is not None else []
    if pool is not None and (pool_tracks or pool.distractors[split]) \
            and pool_rng.random() < sources.instrumental_share:
        return _instrumental_item(pool_rng, split, seconds, sources, rate)
    lead_in = float(rng.uniform(0.0, 4.0)) if rng.random() < 0.4 else float(rng.uniform(0.0, 0.5))
    song = None
    voices = sources.voices[split]
    if rng.random() < 0.55:
        kind = "sung"
        source = voices[int(rng.integers(len(voices)))]
        song = random_song(rng, seconds, _register(rng), start_s=lead_in)
        frame_period = world.FRAME_PERIOD_MS
        n_frames = int(seconds * 1000 / frame_period) + 1
        target = expressive_f0(song.notes, frame_period / 1000.0, rng, n_frames=n_frames)
        target = np.where(labels.f0_to_class(target) > 0, target, 0.0)
        onsets = np.array([int(np.ceil(n.onset * 1000 / frame_period)) for n in song.notes])
        analysis = cache.voice(source.path)
        voiced_f0 = analysis.f0[analysis.voiced]
        register_shift = np.median(labels.hz_to_midi(target[target > 0])) - np.median(labels.hz_to_midi(voiced_f0))
        ratio = float(np.clip(2.0 ** (register_shift / 12.0 * 0.25) * rng.uniform(0.92, 1.08), 0.8, 1.25))
        vocal, label_f0 = sing(analysis, target, onsets, rng, formant_ratio=ratio)
        voice_names = [f"{source.group}/{source.path.name}"]
    else:
        kind = "resung"
        vocal, label_f0, voice_names = _resung_voice(rng, voices, cache, seconds)
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
    ratio_db = float(rng.uniform(-5.0, 10.0))
    active = voice_active(label_f0, world.FRAME_PERIOD_MS, n, rate)
    if not active.any():
        active = None
    mix, _ = mix_at_ratio(vocal, accompaniment, ratio_db, active)
    label = label_frames(label_f0, world.FRAME_PERIOD_MS, len(mix), rate)
    fields = {"kind": kind, "voices": ";".join(voice_names), "accompaniment": accompaniment_name,
              "ratio_db": round(ratio_db, 2), "seconds": round(len(mix) / rate, 3)}
    return mix, label, fields


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
    import ctypes
    import signal

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


def write_manifest(path: Path, rows: list[dict]) -> None:
    """The corpus manifest as CSV (paths relative to the manifest's folder)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["id"]):
        writer.writerow({key: row.get(key, "") for key in MANIFEST_FIELDS})
    write_text_atomic(path, buffer.getvalue())


MANIFEST_FIELDS = ("id", "split", "audio", "label", "kind", "voices", "accompaniment", "ratio_db", "seconds", "seed")


def run_compose(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    voice_dirs = [Path(d) for d in (args.voices or DEFAULT_VOICE_DIRS)]
    if args.no_research:
        voice_dirs = [d for d in voice_dirs if "research" not in d.name]
    sources = discover_sources(voice_dirs, [Path(d) for d in (args.accompaniment or DEFAULT_ACCOMPANIMENT_DIRS)])
    for split, group in (sources.held_out or {}).items():
        if not args.quiet:
            print(f"note: no voice of the {split} split among --voices: {group} is held out for it", file=sys.stderr)
    if args.music:
        sources.pool = music_pool.load_pool(args.music)
        sources.instrumental_share = args.instrumental_share
        if sources.pool.unscreened and not args.quiet:
            print(f"warning: {sources.pool.unscreened} tracks of {args.music} have no screening decision "
                  f"and are not used", file=sys.stderr)
    settings = {"seed": args.seed, "sample_rate": args.sample_rate, "voices": sorted(map(str, voice_dirs)),
                 "accompaniment": sorted(map(str, args.accompaniment or DEFAULT_ACCOMPANIMENT_DIRS)),
                 "music": str(Path(args.music).resolve()) if args.music else None,
                 "instrumental_share": args.instrumental_share if args.music else None}
    check_corpus_settings(Path(args.output_dir), settings)
    output_dir = ensure_output_dir(args.output_dir)
    for split in SPLITS:
        ensure_output_dir(output_dir / split)
    write_text_atomic(output_dir / "compose.json", json.dumps(settings, indent=1) + "\n")
    cache_dir = Path(args.cache_dir)
    plan = [item for item in _plan(args.minutes, args.seed) if item[1] in (args.splits or SPLITS)]
    tasks = [(index, split, seconds, args.seed, output_dir) for index, split, seconds in plan]
    all_voices = sorted({v.path for split in SPLITS for v in sources.voices[split]})
    init = (sources, cache_dir, args.sample_rate)
    quiet = args.quiet
    if args.workers > 1:
        pool = multiprocessing.get_context("fork").Pool(args.workers, _init_worker, (*init, True))
        mapper = lambda fn, items: pool.imap_unordered(fn, items)  # noqa: E731
    else:
        pool = None
        _init_worker(*init)
        mapper = map
    try:
        list(tqdm(mapper(_analyse_voice, all_voices), total=len(all_voices), desc="voices (WORLD)",
                  unit="file", disable=quiet, file=sys.stderr))
        rows = list(tqdm(mapper(_make_item, tasks), total=len(tasks), desc="items", unit="item",
                         disable=quiet, file=sys.stderr))
    finally:
        if pool is not None:
            pool.terminate()
    write_manifest(output_dir / "manifest.csv", rows)
    minutes = {split: sum(r["seconds"] for r in rows if r["split"] == split) / 60 for split in SPLITS}
    if not quiet:
        print(f"wrote {len(rows)} items to {output_dir}: " +
              ", ".join(f"{split} {m:.1f} min" for split, m in minutes.items()) +
              f"; manifest {output_dir / 'manifest.csv'}", file=sys.stderr)
        by_kind: dict[str, float] = {}
        for row in rows:
            kind = accompaniment_kind(row)
            by_kind[kind] = by_kind.get(kind, 0.0) + row["seconds"] / 60
        print("minutes by accompaniment: " + ", ".join(f"{kind} {m:.1f}" for kind, m in sorted(by_kind.items())),
              file=sys.stderr)
    return 0


def check_corpus_settings(folder: Path, settings: dict) -> None:
    """A folder holds one corpus: adding items made with other settings (a new seed...) would mix two."""
    recorded = folder / "compose.json"
    if recorded.is_file():
        before = json.loads(recorded.read_text())
        changed = [key for key in settings if before.get(key) != settings[key]]
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


# ----------------------------------------------------------------------------- fetch-music

def run_fetch_music(args: argparse.Namespace) -> int:
    rows = music_pool.fetch_music(args.output_dir, args.packages, args.deb, progress=not args.quiet)
    if not args.quiet:
        minutes: dict[str, float] = {}
        for row in rows:
            minutes[row["split"]] = minutes.get(row["split"], 0.0) + float(row["minutes"])
        print(f"inventory {Path(args.output_dir) / 'inventory.csv'}: {len(rows)} tracks, "
              + ", ".join(f"{split} {m:.1f} min" for split, m in sorted(minutes.items())), file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(prog="synth_testset.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    modes = parser.add_subparsers(dest="mode", required=True)
    debug = {"action": "store_true", "help": argparse.SUPPRESS}

    demo = modes.add_parser("demo", help="make the demo song and its label")
    demo.add_argument("-o", "--output-dir", default="audio", help="folder (default: audio/)")
    demo.add_argument("--seed", type=argtypes.seed, default=0)
    demo.add_argument("--debug", **debug)
    demo.set_defaults(run=run_demo)

    ana = modes.add_parser("anasyn", help="analysis-synthesis of a vocal stem, remixed (the paper's test sets)")
    ana.add_argument("--vocal", required=True, help="vocal stem (or a multitrack file with --vocal-stream)")
    ana.add_argument("--vocal-stream", type=argtypes.integer(0, 64), default=0, help="audio stream of the vocal (stem MP4: 4)")
    ana.add_argument("--accompaniment", help="accompaniment file (default: the vocal's file, other streams)")
    ana.add_argument("--accompaniment-streams", help="comma-separated streams summed as accompaniment (stem MP4: 1,2,3)")
    ana.add_argument("--loop-accompaniment", action="store_true", help="loop or cut the accompaniment to the vocal's length")
    ana.add_argument("--ratio-db", type=argtypes.number(-60.0, 60.0), default=None,
                     help="vocal-to-accompaniment ratio in dB (default: the original levels)")
    ana.add_argument("--transpose", type=argtypes.number(-24.0, 24.0), default=0.0, help="transpose the voice by semitones")
    ana.add_argument("--sample-rate", type=argtypes.synth_rate, default=22050)
    ana.add_argument("--name", help="output name prefix (default: the vocal file's name)")
    ana.add_argument("-o", "--output-dir", default="data/anasyn")
    ana.add_argument("--debug", **debug)
    ana.set_defaults(run=run_anasyn)

    comp = modes.add_parser("compose", help="a labeled training corpus: new melodies sung with real voices")
    comp.add_argument("--minutes", type=argtypes.number(0.0, 10000.0, low_open=True), default=10.0, help="minutes of audio in all splits")
    comp.add_argument("--seed", type=argtypes.seed, default=0)
    comp.add_argument("--workers", type=argtypes.integer(1, 256), default=max(1, (os.cpu_count() or 1)))
    comp.add_argument("--voices", nargs="+", help="voice folders (default: ../shared/data/voice and voice_research)")
    comp.add_argument("--no-research", action="store_true", help="leave out research-only voice folders")
    comp.add_argument("--accompaniment", nargs="+", help="accompaniment folders (default: ../shared/data/accompaniment)")
    comp.add_argument("--music", help="a fetched music pool (fetch-music's folder, e.g. data/music): its screened "
                      "instrumental tracks become accompaniment, lead-guitar distractors and whole unvoiced items, "
                      "each package in one split")
    comp.add_argument("--instrumental-share", type=argtypes.share, default=INSTRUMENTAL_SHARE,
                      help=f"with --music: share of items that are instrumental music alone, unvoiced on every "
                      f"frame (default {INSTRUMENTAL_SHARE})")
    comp.add_argument("--splits", nargs="+", choices=SPLITS, help="make only these splits' items "
                      "(the plan, and so every item, stays that of the whole corpus)")
    comp.add_argument("--sample-rate", type=argtypes.synth_rate, default=SYNTH_RATE)
    comp.add_argument("--cache-dir", default="cache", help="WORLD analyses are cached here")
    comp.add_argument("-o", "--output-dir", default="data/synth")
    comp.add_argument("-q", "--quiet", action="store_true")
    comp.add_argument("--debug", **debug)
    comp.set_defaults(run=run_compose)

    fetch = modes.add_parser("fetch-music", help="download and extract the real instrumental music pool "
                             "(Debian game-music packages) and write its inventory")
    fetch.add_argument("-o", "--output-dir", default="data/music")
    fetch.add_argument("--packages", nargs="+", help=f"only these packages (default: all {len(music_pool.PACKAGES)})")
    fetch.add_argument("--deb", nargs="+", default=[], help="use these local .deb files instead of downloading")
    fetch.add_argument("-q", "--quiet", action="store_true")
    fetch.add_argument("--debug", **debug)
    fetch.set_defaults(run=run_fetch_music)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    run_cli(main)
