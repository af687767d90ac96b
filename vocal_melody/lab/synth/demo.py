"""The project's demo song: an espeak-ng voice shaped by WORLD onto a public-domain melody ("Twinkle,
Twinkle, Little Star") with soundfont accompaniment, made only from material the project may redistribute."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from vocal_melody.errors import MelodyError
from vocal_melody.lab.synth import world
from vocal_melody.lab.synth.contours import Note, expressive_f0
from vocal_melody.lab.synth.mixing import SYNTH_RATE, label_frames, mix_at_ratio, voice_active
from vocal_melody.lab.synth.singing import sing
from vocal_melody.lab.synth.soundfont import Track, render


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
