"""randAudioAugment: the paper's random chain of six sox effects.

Each effect is applied with probability 0.5, in this order, with parameters
drawn from the paper's ranges:

==========  =====================================================
lowshelf    gain +-0..12 dB, 20-300 Hz, slope 0.1-0.7 (sox ``bass``)
highshelf   gain +-0..12 dB, 1-3 kHz (sox ``treble``)
equalizer   100-3000 Hz, Q 0.5-1.5, gain +-0..6 dB
overdrive   gain 3-7, colour 40
phaser      in 0.9, out 0.8, delay 1 ms, decay 0.25, speed 2 Hz, sinusoidal
reverb      reverberance, high-frequency damping, room scale 30-70; wet gain 1-6 dB
==========  =====================================================

Effects run in the real sox (the ``sox`` package on PyPI drives the sox
binary) at the audio's **true** sample rate. The original code handed 8 kHz
audio to sox as if it were 44.1 kHz, which moved every effect frequency by
8000/44100 = 0.18x (a 300 Hz shelf acted at 54 Hz); ``original_rate_quirk``
reproduces that for comparisons with the paper.

A chain is a list of ``(effect, parameters)`` drawn from a seeded
generator, so a given (track, seed, k) always gives the same chain, and
the chain can be recorded and replayed.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np

from vocal_melody.cache import cache_key
from vocal_melody.errors import MelodyError


EFFECT_PROBABILITY = 0.5


HIGHEST_EFFECT_HZ = 3000.0
"""The top of the shelf and equalizer frequency ranges: sox refuses a frequency above Nyquist."""


ORIGINAL_ASSUMED_RATE = 44100
"""The sample rate sox assumed in the original code, whatever the audio's."""


EFFECTS = ("lowshelf", "highshelf", "equalizer", "overdrive", "phaser", "reverb")


def _signed_gain(rng: np.random.Generator, limit: float) -> float:
    return float(rng.uniform(0.0, limit) * rng.choice([-1.0, 1.0]))


def sample_chain(rng: np.random.Generator) -> list[tuple[str, dict]]:
    """A random effect chain; every effect is drawn (and kept with probability 0.5) in a fixed order."""
    draws = {
        "lowshelf": lambda: {"gain_db": _signed_gain(rng, 12.0), "frequency": float(rng.uniform(20, 300)),
                             "slope": float(rng.uniform(0.1, 0.7))},
        "highshelf": lambda: {"gain_db": _signed_gain(rng, 12.0),
                              "frequency": float(rng.uniform(1000, HIGHEST_EFFECT_HZ)), "slope": 0.5},
        "equalizer": lambda: {"frequency": float(rng.uniform(100, HIGHEST_EFFECT_HZ)),
                              "width_q": float(rng.uniform(0.5, 1.5)), "gain_db": _signed_gain(rng, 6.0)},
        "overdrive": lambda: {"gain_db": float(rng.uniform(3, 7)), "colour": 40.0},
        "phaser": lambda: {"gain_in": 0.9, "gain_out": 0.8, "delay": 1, "decay": 0.25, "speed": 2.0,
                           "modulation_shape": "sinusoidal"},
        "reverb": lambda: {"reverberance": float(rng.uniform(30, 70)),
                           "high_freq_damping": float(rng.uniform(30, 70)),
                           "room_scale": float(rng.uniform(30, 70)), "wet_gain": float(rng.uniform(1, 6))},
    }
    chain = []
    for name in EFFECTS:
        keep = rng.random() < EFFECT_PROBABILITY
        params = draws[name]()  # drawn either way: each effect's parameters do not depend on the others
        if keep:
            chain.append((name, params))
    return chain


def chain_for(track_id: str, seed: int, k: int = 0) -> list[tuple[str, dict]]:
    """The chain of augmentation ``k`` of a track (its name or content digest) under ``seed``."""
    digest = int(cache_key("augment", track_id, seed, k)[:15], 16)
    return sample_chain(np.random.default_rng([seed, digest, k]))


def describe(chain: list[tuple[str, dict]]) -> str:
    """The chain as compact JSON (recorded with cached features and in logs)."""
    return json.dumps(chain, sort_keys=True)


_SOX_METHOD = {"lowshelf": "bass", "highshelf": "treble", "equalizer": "equalizer",
               "overdrive": "overdrive", "phaser": "phaser", "reverb": "reverb"}


def apply_chain(audio: np.ndarray, sample_rate: int, chain: list[tuple[str, dict]],
                original_rate_quirk: bool = False) -> np.ndarray:
    """Run a chain through sox; returns float32 audio of the same length and rate."""
    if not chain:
        return np.asarray(audio, dtype=np.float32)
    if shutil.which("sox") is None:
        raise MelodyError("randAudioAugment needs the sox program: apt-get install sox")
    import sox

    logging.getLogger("sox").setLevel(logging.ERROR)  # pysox warns about clipping on every call
    transformer = sox.Transformer()
    transformer.set_globals(verbosity=0)
    for name, params in chain:
        getattr(transformer, _SOX_METHOD[name])(**params)
    rate = ORIGINAL_ASSUMED_RATE if original_rate_quirk else sample_rate
    samples = np.asarray(audio, dtype=np.float32)
    output = transformer.build_array(input_array=samples, sample_rate_in=rate)
    output = np.asarray(output, dtype=np.float32).reshape(len(output), -1).mean(axis=1)
    if len(output) != len(samples):  # reverb tails and the like: keep the original timeline
        output = np.pad(output, (0, max(0, len(samples) - len(output))))[:len(samples)]
    return output


def rand_audio_augment(audio: np.ndarray, sample_rate: int, rng: np.random.Generator,
                       original_rate_quirk: bool = False) -> tuple[np.ndarray, list[tuple[str, dict]]]:
    """Draw a chain and apply it: ``(augmented audio, chain)``."""
    chain = sample_chain(rng)
    return apply_chain(audio, sample_rate, chain, original_rate_quirk), chain
