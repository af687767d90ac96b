"""Sing a target f0 track with the timbre and phonetics of a real voice (WORLD).

The voice's syllables (voiced runs of its gated analysis) are time-warped
onto the target's notes, in order, with the unvoiced consonant that
precedes each syllable placed at some note onsets. Formants can be moved
(``formant_ratio``) for gender/age variety. The returned label is the
target f0 with consonant frames set to 0, so it is exact: WORLD
synthesizes voiced frames with exactly that f0 and consonants with noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vocal_melody.lab.synth.contours import voiced_runs
from vocal_melody.lab.synth.world import WorldAnalysis, synthesize, warp_envelope

MIN_SYLLABLE_FRAMES = 6
MAX_CONSONANT_FRAMES = 16
CONSONANT_MIN_ENERGY_DB = -40.0
REST_ENVELOPE = 1e-12


@dataclass
class Syllable:
    """Frame ranges of one syllable in a voice analysis: [consonant_start, start) then [start, stop)."""

    consonant_start: int
    start: int
    stop: int


def find_syllables(voice: WorldAnalysis) -> list[Syllable]:
    """Voiced runs of at least ``MIN_SYLLABLE_FRAMES`` with their preceding audible unvoiced frames."""
    voiced = voice.voiced
    starts, stops = voiced_runs(voiced)
    energy = voice.energy_db if voice.energy_db is not None else np.zeros(len(voiced))
    syllables = []
    previous_stop = 0
    for start, stop in zip(starts, stops):
        if stop - start >= MIN_SYLLABLE_FRAMES:
            consonant = start
            while (consonant > max(previous_stop, start - MAX_CONSONANT_FRAMES)
                   and not voiced[consonant - 1] and energy[consonant - 1] > CONSONANT_MIN_ENERGY_DB):
                consonant -= 1
            syllables.append(Syllable(int(consonant), int(start), int(stop)))
        previous_stop = stop
    return syllables


def note_segments(f0: np.ndarray, onsets: np.ndarray) -> list[tuple[int, int]]:
    """Voiced segments [start, stop) of ``f0``, split at the given onset frames."""
    voiced = f0 > 0
    starts, stops = voiced_runs(voiced)
    bounds = set(starts.tolist()) | set(stops.tolist())
    bounds |= {int(o) for o in onsets if 0 < o < len(f0)}
    bounds = sorted(bounds | {0, len(f0)})
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if voiced[a]]


def sing(voice: WorldAnalysis, target_f0: np.ndarray, onsets: np.ndarray, rng: np.random.Generator,
         formant_ratio: float = 1.0, consonant_probability: float = 0.6,
         gain_db_range: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Synthesize ``target_f0`` (Hz per ``voice.frame_period`` frame) sung by ``voice``.

    Returns ``(audio, label_f0)`` at ``voice.sample_rate``; ``label_f0`` is
    ``target_f0`` with consonant frames unvoiced.
    """
    syllables = find_syllables(voice)
    if not syllables:
        raise ValueError("the voice has no usable voiced syllables")
    n = len(target_f0)
    label = np.asarray(target_f0, dtype=np.float64).copy()
    sp = np.full((n, voice.sp.shape[1]), REST_ENVELOPE)
    ap = np.ones((n, voice.ap.shape[1]))
    choice = int(rng.integers(len(syllables)))
    for start, stop in note_segments(label, onsets):
        syllable = syllables[choice % len(syllables)]
        choice += 1 if rng.random() < 0.85 else int(rng.integers(1, len(syllables) + 1))
        after_rest = start == 0 or label[start - 1] <= 0
        consonant_frames = syllable.start - syllable.consonant_start
        if consonant_frames and (after_rest or rng.random() < consonant_probability):
            c = min(consonant_frames, (stop - start) // 3)
            if c > 0:
                source = np.arange(syllable.start - c, syllable.start)
                sp[start:start + c] = voice.sp[source]
                ap[start:start + c] = voice.ap[source]
                label[start:start + c] = 0.0
                start += c
        length = stop - start
        # linear time warp of the syllable's voiced frames onto the note
        source = syllable.start + np.floor(np.arange(length) * (syllable.stop - syllable.start) / length).astype(int)
        gain = 10.0 ** (rng.uniform(-gain_db_range, gain_db_range) / 10.0)
        sp[start:stop] = voice.sp[source] * gain
        ap[start:stop] = voice.ap[source]
    sp = warp_envelope(sp, formant_ratio)
    audio = synthesize(label, sp, ap, voice.sample_rate, voice.frame_period)
    return audio, label
