"""Labeled vocal-melody data by synthesis, with exact f0 labels.

Modes:

- ``demo``: the project's demo song (``audio/demo_song.wav`` and its label),
  made only from material the project may redistribute: an espeak-ng voice
  shaped by WORLD onto a public-domain melody, with soundfont accompaniment.

Every item is written as a mix, and a label at 10 ms (``time f0`` lines,
``"%.2f %.4f"``, 0 = unvoiced) covering exactly the frames the extractor
produces for the mix.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

import featureExtraction as features
from melody import world
from melody.contours import Note, expressive_f0
from melody.errors import MelodyError, run_cli
from melody.fileio import atomic_path, ensure_output_dir, write_text_atomic
from melody.singing import sing
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


def format_label(f0_10ms: np.ndarray) -> str:
    """Label text: ``"%.2f %.4f"`` per 10 ms frame, like the extractor's output."""
    times = features.frame_times(len(f0_10ms))
    return "".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times.tolist(), f0_10ms.tolist()))


def write_audio(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit audio (format from the suffix) atomically."""
    import soundfile

    with atomic_path(path) as temp:
        soundfile.write(str(temp), audio, sample_rate, subtype="PCM_16", format=path.suffix[1:].upper())


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


# ----------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="synth_testset.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    modes = parser.add_subparsers(dest="mode", required=True)
    demo = modes.add_parser("demo", help="make the demo song and its label")
    demo.add_argument("-o", "--output-dir", default="audio", help="folder (default: audio/)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(run=run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    run_cli(main)
