"""Expressive sung f0 contours from note lists.

A note list becomes a frame-wise f0 track (Hz, 0 in rests) with the
expression a human singer adds: portamento between legato notes, onset
scoops after rests, vibrato (4.5-7 Hz, 20-80 cents peak deviation, fading
in, slowly varying rate), slow drift and small jitter. The track is the
label of anything synthesized from it, so it is exact by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vocal_melody.labels import midi_to_hz

VIBRATO_DEPTH_CENTS = (20.0, 80.0)
"""Range of a sung vibrato's peak deviation."""
VIBRATO_RATE_HZ = (4.5, 7.0)
"""Range of a sung vibrato's rate."""
PLAIN_SMOOTHING_S = 0.4
"""Hann window that flattens a vibrato out of a real contour: at 4.5 Hz and above it passes under 1 %."""


@dataclass(frozen=True)
class Note:
    """A sung note: onset and duration in seconds, pitch in (fractional) MIDI."""

    onset: float
    duration: float
    midi: float

    @property
    def offset(self) -> float:
        return self.onset + self.duration


def _smooth_noise(rng: np.random.Generator, n: int, smoothing_frames: int, scale: float) -> np.ndarray:
    """Gaussian noise low-passed by a moving average, rescaled to std ``scale``."""
    if n == 0:
        return np.zeros(0)
    width = max(1, smoothing_frames)
    noise = rng.standard_normal(n + 2 * width)
    smooth = np.convolve(noise, np.hanning(2 * width + 1), mode="same")[width:width + n]
    std = smooth.std()
    return smooth * (scale / std) if std > 0 else smooth


def expressive_f0(notes: list[Note], frame_period: float, rng: np.random.Generator,
                  n_frames: int | None = None, vibrato_depth: tuple[float, float] = VIBRATO_DEPTH_CENTS,
                  vibrato_rate: tuple[float, float] = VIBRATO_RATE_HZ) -> np.ndarray:
    """Frame-wise f0 in Hz (0 = rest) for ``notes``, one value every ``frame_period`` seconds.

    Frame ``i`` is at time ``i * frame_period``. Notes must not overlap.
    """
    notes = sorted(notes, key=lambda n: n.onset)
    end = max((n.offset for n in notes), default=0.0)
    n_frames = int(np.ceil(end / frame_period)) + 1 if n_frames is None else n_frames
    times = np.arange(n_frames) * frame_period
    midi = np.full(n_frames, np.nan)
    cents = np.zeros(n_frames)
    spans = []
    for note in notes:
        start = int(np.ceil(note.onset / frame_period - 1e-9))
        stop = min(n_frames, int(np.ceil(note.offset / frame_period - 1e-9)))
        if stop > start:
            midi[start:stop] = note.midi
            spans.append((start, stop, note))
    for index, (start, stop, note) in enumerate(spans):
        length = (stop - start) * frame_period
        t = times[start:stop] - times[start]
        legato_in = index > 0 and start - spans[index - 1][1] <= 1
        if legato_in:
            # portamento: a smooth glide from the previous pitch across the boundary
            previous = spans[index - 1][2].midi
            glide = int(rng.uniform(0.04, 0.15) / frame_period)
            lo = max(spans[index - 1][0], start - glide // 2)
            hi = min(stop, start + glide - glide // 2)
            if hi > lo:
                x = (np.arange(lo, hi) - lo + 0.5) / (hi - lo)
                shape = x * x * (3 - 2 * x)
                midi[lo:hi] = previous + (note.midi - previous) * shape
        elif rng.random() < 0.7:
            # onset scoop: start below the note and rise into it
            depth = rng.uniform(40.0, 200.0)
            tau = rng.uniform(0.02, 0.07)
            cents[start:stop] -= depth * np.exp(-t / tau)
        if length > 0.3:
            rate = rng.uniform(*vibrato_rate) + _smooth_noise(rng, stop - start, int(0.3 / frame_period), 0.25)
            depth = rng.uniform(*vibrato_depth) * (1.0 + _smooth_noise(
                rng, stop - start, int(0.3 / frame_period), 0.15))
            delay, fade = rng.uniform(0.08, 0.3), rng.uniform(0.15, 0.4)
            envelope = np.clip((t - delay) / fade, 0.0, 1.0)
            phase = 2 * np.pi * np.cumsum(rate) * frame_period + rng.uniform(0, 2 * np.pi)
            cents[start:stop] += depth * envelope * np.sin(phase)
    cents += _smooth_noise(rng, n_frames, int(0.8 / frame_period), rng.uniform(4.0, 12.0))  # drift
    cents += _smooth_noise(rng, n_frames, 2, rng.uniform(1.0, 3.0))  # jitter
    f0 = midi_to_hz(np.nan_to_num(midi) + cents / 100.0)
    return np.where(np.isnan(midi), 0.0, f0)


def vibrato_cents(n_frames: int, frame_period: float, rng: np.random.Generator,
                  depth: tuple[float, float] = VIBRATO_DEPTH_CENTS,
                  rate: tuple[float, float] = VIBRATO_RATE_HZ) -> np.ndarray:
    """A sung-like vibrato on its own: cents of deviation per frame, with slowly varying rate and depth."""
    smoothing = int(0.3 / frame_period)
    rate_hz = rng.uniform(*rate) + _smooth_noise(rng, n_frames, smoothing, 0.25)
    depth_cents = rng.uniform(*depth) * (1.0 + _smooth_noise(rng, n_frames, smoothing, 0.15))
    phase = 2 * np.pi * np.cumsum(rate_hz) * frame_period + rng.uniform(0, 2 * np.pi)
    return depth_cents * np.sin(phase)


def voiced_runs(voiced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and stops (exclusive) of the runs of True in a per-frame voicing array."""
    edges = np.diff(np.concatenate([[0], np.asarray(voiced, dtype=np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def without_vibrato(f0: np.ndarray, frame_period: float, window_s: float = PLAIN_SMOOTHING_S) -> np.ndarray:
    """A contour (Hz, 0 = unvoiced) with its vibrato and faster wobbles smoothed away, each voiced run apart.

    The smoothing is in cents, so a note keeps its pitch; slides slower than the window survive.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    plain = f0.copy()
    width = max(1, int(round(window_s / frame_period)) // 2)
    window = np.hanning(2 * width + 1)
    for start, stop in zip(*voiced_runs(f0 > 0)):
        cents = 1200.0 * np.log2(f0[start:stop])
        centred = slice(width, width + stop - start)  # "same" for runs shorter than the window too
        # weights renormalised at the run's ends, so a note's first and last frames keep their level
        total = np.convolve(np.ones(stop - start), window)[centred]
        plain[start:stop] = 2.0 ** (np.convolve(cents, window)[centred] / total / 1200.0)
    return plain
