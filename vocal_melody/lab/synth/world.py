"""WORLD vocoder analysis-synthesis (pyworld) with a careful voicing decision.

Harvest alone voices breath, reverb tails, silence and voiced consonants.
:func:`voicing_gate` keeps a frame voiced only if harvest finds an f0, the
frame's energy is within ``energy_range_db`` of the file's 95th-percentile
frame, and the mean D4C aperiodicity over 100-3000 Hz is below
``max_aperiodicity`` (its accuracy against a human f0 label is in
docs/engineering.md; the tests re-measure it when the shared data is present).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vocal_melody.audio import load_audio
from vocal_melody.cache import cache_key, file_digest

FRAME_PERIOD_MS = 5.0
"""WORLD analysis hop (ms)."""
F0_FLOOR = 70.0
F0_CEIL = 1000.0
ENERGY_WINDOW_S = 0.03
ENERGY_RANGE_DB = 20.0
MAX_APERIODICITY = 0.5
APERIODICITY_BAND_HZ = (100.0, 3000.0)


@dataclass
class WorldAnalysis:
    """WORLD parameters of a voice, one row per ``frame_period`` ms frame."""

    f0: np.ndarray          # harvest f0 (Hz), gated: 0 where unvoiced
    sp: np.ndarray          # CheapTrick spectral envelope, (frames, fft_size // 2 + 1)
    ap: np.ndarray          # D4C aperiodicity, same shape
    sample_rate: int
    frame_period: float = FRAME_PERIOD_MS
    raw_f0: np.ndarray | None = None   # harvest before the gate
    energy_db: np.ndarray | None = None  # frame energy relative to the 95th percentile

    @property
    def voiced(self) -> np.ndarray:
        return self.f0 > 0

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self.f0)) * self.frame_period / 1000.0


def frame_energy_db(audio: np.ndarray, sample_rate: int, n_frames: int,
                    frame_period: float = FRAME_PERIOD_MS, window_s: float = ENERGY_WINDOW_S) -> np.ndarray:
    """Energy (dB) of a ``window_s`` window centred on each WORLD frame."""
    hop = frame_period / 1000.0 * sample_rate
    half = int(window_s * sample_rate / 2)
    squared = np.concatenate([[0.0], np.cumsum(np.asarray(audio, dtype=np.float64) ** 2)])
    centres = np.round(np.arange(n_frames) * hop).astype(int)
    lo = np.clip(centres - half, 0, len(audio))
    hi = np.clip(centres + half, 0, len(audio))
    energy = (squared[hi] - squared[lo]) / np.maximum(hi - lo, 1)
    return 10.0 * np.log10(energy + 1e-12)


def band_aperiodicity(ap: np.ndarray, sample_rate: int, band: tuple[float, float] = APERIODICITY_BAND_HZ) -> np.ndarray:
    """Mean aperiodicity of each frame over a frequency band."""
    freqs = np.linspace(0, sample_rate / 2, ap.shape[1])
    mask = (freqs >= band[0]) & (freqs <= band[1])
    return ap[:, mask].mean(axis=1)


def voicing_gate(raw_f0: np.ndarray, energy_db: np.ndarray, aperiodicity: np.ndarray,
                 energy_range_db: float = ENERGY_RANGE_DB,
                 max_aperiodicity: float = MAX_APERIODICITY) -> np.ndarray:
    """Boolean voiced decision per frame (see the module docstring)."""
    reference = np.percentile(energy_db, 95)
    return (raw_f0 > 0) & (energy_db >= reference - energy_range_db) & (aperiodicity < max_aperiodicity)


def analyse(audio: np.ndarray, sample_rate: int, frame_period: float = FRAME_PERIOD_MS,
            f0_floor: float = F0_FLOOR, f0_ceil: float = F0_CEIL, gate: bool = True) -> WorldAnalysis:
    """Harvest + CheapTrick + D4C of a mono voice, with the voicing gate applied to f0."""
    import pyworld

    x = np.ascontiguousarray(audio, dtype=np.float64)
    raw_f0, t = pyworld.harvest(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
    sp = pyworld.cheaptrick(x, raw_f0, t, sample_rate)
    ap = pyworld.d4c(x, raw_f0, t, sample_rate)
    energy = frame_energy_db(x, sample_rate, len(raw_f0), frame_period)
    if gate:
        voiced = voicing_gate(raw_f0, energy, band_aperiodicity(ap, sample_rate))
        f0 = np.where(voiced, raw_f0, 0.0)
    else:
        f0 = raw_f0.copy()
    return WorldAnalysis(f0, sp, ap, sample_rate, frame_period, raw_f0,
                         energy - np.percentile(energy, 95))


def warp_envelope(sp: np.ndarray, ratio: float) -> np.ndarray:
    """Move formants by ``ratio`` along frequency (>1 up: smaller vocal tract), keeping the frame count."""
    if ratio == 1.0:
        return sp
    bins = np.arange(sp.shape[1], dtype=np.float64)
    source = np.clip(bins / ratio, 0, sp.shape[1] - 1)
    lower = np.floor(source).astype(int)
    upper = np.minimum(lower + 1, sp.shape[1] - 1)
    weight = source - lower
    # interpolate the log envelope: formant shapes survive, no spectral smearing of the energy
    log_sp = np.log(np.maximum(sp, 1e-16))
    return np.exp(log_sp[:, lower] * (1 - weight) + log_sp[:, upper] * weight)


def synthesize(f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, sample_rate: int,
               frame_period: float = FRAME_PERIOD_MS) -> np.ndarray:
    """WORLD synthesis with exactly the given f0 (0 = unvoiced noise excitation)."""
    import pyworld

    return pyworld.synthesize(np.ascontiguousarray(f0, dtype=np.float64),
                              np.ascontiguousarray(sp, dtype=np.float64),
                              np.ascontiguousarray(ap, dtype=np.float64),
                              sample_rate, frame_period).astype(np.float32)


def f0_on_grid(f0: np.ndarray, frame_period: float, n_frames: int, hop_s: float = 0.01) -> np.ndarray:
    """Resample a frame-wise f0 track to a ``hop_s`` grid by nearest frame (no interpolation through gaps)."""
    source = np.round(np.arange(n_frames) * hop_s * 1000.0 / frame_period).astype(int)
    inside = source < len(f0)
    return np.where(inside, f0[np.minimum(source, len(f0) - 1)], 0.0)


def analyse_file(path, sample_rate: int, cache=None, stream: int = 0) -> WorldAnalysis:
    """:func:`analyse` of an audio file at ``sample_rate``, cached by content when ``cache`` is an ArrayCache.

    Harvest runs at about 4x real time on one core, so every voice is
    analysed once; envelopes are cached as float16 logarithms. With a cache,
    a fresh analysis is returned as its stored entry reads back, so what is
    made from it does not depend on whether the entry existed before.
    """
    if cache is None:
        return analyse(load_audio(path, sample_rate, stream), sample_rate)
    key = cache_key("world", file_digest(path), sample_rate, stream, FRAME_PERIOD_MS, F0_FLOOR, F0_CEIL,
                    ENERGY_RANGE_DB, MAX_APERIODICITY)
    entry = cache.load(key)
    if entry is None:
        analysis = analyse(load_audio(path, sample_rate, stream), sample_rate)
        entry = {"f0": analysis.f0, "raw_f0": analysis.raw_f0, "energy_db": analysis.energy_db,
                 "log_sp": np.log(np.maximum(analysis.sp, 1e-30)).astype(np.float16),
                 "ap": analysis.ap.astype(np.float16)}
        cache.save(key, entry)
    return WorldAnalysis(entry["f0"], np.exp(entry["log_sp"].astype(np.float64)), entry["ap"].astype(np.float64),
                         sample_rate, FRAME_PERIOD_MS, entry["raw_f0"], entry["energy_db"])
