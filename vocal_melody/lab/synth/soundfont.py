"""Render General-MIDI accompaniment with fluidsynth and a soundfont (Debian packages).

Tracks are lists of notes; they are written to a temporary MIDI file with
mido and rendered by the ``fluidsynth`` command. Soundfonts are looked up
in ``$MELODY_SOUNDFONT`` then the Debian locations (fluid-soundfont-gm,
timgm6mb-soundfont).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vocal_melody.errors import MelodyError

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
)
DRUM_CHANNEL = 9
TICKS_PER_BEAT = 480
TEMPO_US = 500_000  # 120 bpm: one beat = 0.5 s, so seconds * 960 = ticks


@dataclass
class Track:
    """One instrument: a General-MIDI program (0-127) or drums, and its notes."""

    program: int
    notes: list[tuple[float, float, int, int]] = field(default_factory=list)  # onset s, duration s, key, velocity
    drums: bool = False


def find_soundfont() -> Path:
    """The soundfont to render with; a clear error if none is installed."""
    for candidate in (os.environ.get("MELODY_SOUNDFONT"), *SOUNDFONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise MelodyError("no General-MIDI soundfont found: apt-get install fluid-soundfont-gm "
                      "(or timgm6mb-soundfont), or set MELODY_SOUNDFONT")


def write_midi(tracks: list[Track], path: Path) -> None:
    """Write tracks to a type-1 MIDI file at 120 bpm."""
    import mido

    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0)])
    midi.tracks.append(meta)
    melodic_channels = [c for c in range(16) if c != DRUM_CHANNEL]
    for index, track in enumerate(tracks):
        channel = DRUM_CHANNEL if track.drums else melodic_channels[index % len(melodic_channels)]
        events = []
        for onset, duration, key, velocity in track.notes:
            start = int(round(onset * 960))
            stop = max(start + 1, int(round((onset + duration) * 960)))
            events.append((start, 1, mido.Message("note_on", note=int(key), velocity=int(velocity), channel=channel)))
            events.append((stop, 0, mido.Message("note_off", note=int(key), velocity=0, channel=channel)))
        events.sort(key=lambda e: (e[0], e[1]))
        messages = [] if track.drums else [mido.Message("program_change", program=track.program, channel=channel)]
        now = 0
        for tick, _, message in events:
            messages.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(mido.MidiTrack(messages))
    midi.save(str(path))


def render(tracks: list[Track], seconds: float, sample_rate: int, soundfont: Path | None = None,
           gain: float = 0.6) -> np.ndarray:
    """Render tracks to mono float32 audio of exactly ``seconds`` at ``sample_rate``."""
    import soundfile

    if shutil.which("fluidsynth") is None:
        raise MelodyError("rendering accompaniment needs fluidsynth: apt-get install fluidsynth")
    soundfont = soundfont or find_soundfont()
    with tempfile.TemporaryDirectory() as folder:
        mid, wav = Path(folder) / "song.mid", Path(folder) / "song.wav"
        write_midi(tracks, mid)
        command = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sample_rate),
                   "-F", str(wav), "-T", "wav", str(soundfont), str(mid)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wav.exists():
            raise MelodyError(f"fluidsynth failed: {result.stderr.strip()[:200]}")
        audio, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    n = int(round(seconds * sample_rate))
    return np.pad(audio, (0, max(0, n - len(audio))))[:n]
