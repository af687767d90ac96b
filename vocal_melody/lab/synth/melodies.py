"""Melodic material for synthesized singing: random melodic walks with a harmony.

A song is a key, a tempo, a chord per bar and a vocal line of phrases
separated by rests, in a given singer register. Random but musical enough:
mostly steps in the scale, some leaps, long notes at phrase ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vocal_melody.lab.synth.contours import Note

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS_MAJOR = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (1, 4, 0, 0), (0, 3, 0, 4))
PROGRESSIONS_MINOR = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4), (0, 3, 6, 2))
RHYTHMS = ((1.0,), (0.5, 0.5), (1.5, 0.5), (0.75, 0.25), (2.0,), (0.5, 0.25, 0.25), (1.0, 1.0))
STEPS = np.array([-7, -4, -3, -2, -1, 0, 1, 2, 3, 4, 7])
STEP_WEIGHTS = np.array([0.01, 0.03, 0.04, 0.13, 0.22, 0.12, 0.22, 0.13, 0.04, 0.03, 0.03])


@dataclass
class Song:
    """A generated song: vocal notes and the harmony under them."""

    tonic: int                          # MIDI pitch class root near the bass register
    scale: tuple[int, ...]
    beat_s: float
    notes: list[Note] = field(default_factory=list)
    chords: list[tuple[float, float, tuple[int, ...]]] = field(default_factory=list)  # onset, duration, MIDI keys

    @property
    def duration(self) -> float:
        return max([n.offset for n in self.notes] + [c[0] + c[1] for c in self.chords] + [0.0])


def _triad(tonic: int, scale: tuple[int, ...], degree: int) -> tuple[int, ...]:
    keys = []
    for step in (0, 2, 4):
        index = degree + step
        keys.append(tonic + scale[index % 7] + 12 * (index // 7))
    return tuple(keys)


def random_song(rng: np.random.Generator, seconds: float, register: tuple[float, float],
                start_s: float = 0.0) -> Song:
    """A song of about ``seconds`` whose vocal line stays within ``register`` (MIDI low, high)."""
    minor = rng.random() < 0.35
    scale = MINOR if minor else MAJOR
    tonic = int(rng.integers(40, 52))
    beat_s = 60.0 / rng.uniform(70, 140)
    progressions = PROGRESSIONS_MINOR if minor else PROGRESSIONS_MAJOR
    progression = progressions[int(rng.integers(len(progressions)))]
    song = Song(tonic, scale, beat_s)
    bar_s = 4 * beat_s
    n_bars = int(np.ceil((seconds - start_s) / bar_s))
    for bar in range(n_bars):
        degree = progression[bar % len(progression)]
        song.chords.append((start_s + bar * bar_s, bar_s, _triad(tonic, scale, degree)))

    low, high = register
    # the scale as MIDI pitches inside the register
    pitches = np.array([p for p in range(int(low), int(high) + 1) if (p - tonic) % 12 in scale])
    position = int(rng.integers(len(pitches) // 3, max(len(pitches) // 3 + 1, 2 * len(pitches) // 3)))
    time = start_s + beat_s * float(rng.choice([0.0, 0.5, 1.0]))
    end = start_s + n_bars * bar_s
    while time < end - beat_s:
        phrase_beats = float(rng.choice([6, 8, 8, 12, 16]))
        phrase_end = min(end - beat_s, time + phrase_beats * beat_s)
        while time < phrase_end:
            for value in RHYTHMS[int(rng.integers(len(RHYTHMS)))]:
                step = int(rng.choice(STEPS, p=STEP_WEIGHTS / STEP_WEIGHTS.sum()))
                if not 0 <= position + step < len(pitches):
                    step = -step
                position = int(np.clip(position + step, 0, len(pitches) - 1))
                duration = value * beat_s
                legato = rng.uniform(0.85, 1.0)
                song.notes.append(Note(time, duration * legato, float(pitches[position])))
                time += duration
        # hold the phrase's last note, then breathe
        last = song.notes[-1]
        hold = float(rng.choice([1.0, 1.5, 2.0])) * beat_s
        song.notes[-1] = Note(last.onset, last.duration + hold * 0.9, last.midi)
        time += hold + float(rng.choice([0.5, 1.0, 1.5, 2.0, 3.0])) * beat_s
    song.notes = [n for n in song.notes if n.offset <= end]
    return song
