"""The paper's test-set method: analysis-synthesis of a vocal stem with WORLD (gated harvest f0, envelope,
aperiodicity), resynthesized with exactly that f0, so the label is exact, and remixed with its accompaniment."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vocal_melody import labels
from vocal_melody.audio import load_audio
from vocal_melody.errors import MelodyError
from vocal_melody.lab.synth import world
from vocal_melody.lab.synth.mixing import label_frames, mix_at_ratio, rms_db, voice_active


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
