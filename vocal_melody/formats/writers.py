"""Output writers for melody files, each writing atomically.

``txt`` is the original tool's format, unchanged: one line per 10 ms frame,
``"%.2f %.4f"`` (time in s, f0 in Hz, 0 = unvoiced).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from vocal_melody import features
from vocal_melody.fileio import write_text_atomic


def format_label(f0_10ms: np.ndarray) -> str:
    """Label text: ``"%.2f %.4f"`` per 10 ms frame, like the extractor's output."""
    return format_txt(features.frame_times(len(f0_10ms)), f0_10ms)


def format_txt(times: np.ndarray, f0: np.ndarray, confidence: np.ndarray | None = None) -> str:
    """The original ``pitch_NAME.txt`` format."""
    return "".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times.tolist(), f0.tolist()))


def format_csv(times: np.ndarray, f0: np.ndarray, confidence: np.ndarray) -> str:
    """CSV with header ``time,frequency,confidence`` (confidence = voicing probability)."""
    rows = (f"{t:.2f},{f:.4f},{c:.4f}\n" for t, f, c in zip(times.tolist(), f0.tolist(), confidence.tolist()))
    return "time,frequency,confidence\n" + "".join(rows)


def format_json(times: np.ndarray, f0: np.ndarray, confidence: np.ndarray) -> str:
    """JSON object with arrays ``time``, ``frequency`` and ``confidence``."""
    return json.dumps({
        "time": [round(t, 2) for t in times.tolist()],
        "frequency": [round(f, 4) for f in f0.tolist()],
        "confidence": [round(c, 4) for c in confidence.tolist()],
    }) + "\n"


def format_sv(times: np.ndarray, f0: np.ndarray, confidence: np.ndarray) -> str:
    """Sonic Visualiser / Tony pitch-track CSV: ``time,frequency`` for voiced frames only, no header."""
    voiced = np.asarray(f0) > 0
    return "".join(f"{t:.3f},{f:.4f}\n" for t, f in zip(times[voiced].tolist(), f0[voiced].tolist()))


FORMATS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray, np.ndarray], str]]] = {
    "txt": (".txt", format_txt),
    "csv": (".csv", format_csv),
    "json": (".json", format_json),
    "sv": (".sv.csv", format_sv),
}
"""Output format name -> (file suffix, formatter)."""


def output_path(audio_path: str | os.PathLike, output_dir: str | os.PathLike, fmt: str = "txt") -> Path:
    """``pitch_NAME.EXT.txt`` for input ``NAME.EXT`` (suffix per format)."""
    suffix, _ = FORMATS[fmt]
    return Path(output_dir) / f"pitch_{Path(audio_path).name}{suffix}"


def write_melody(path: str | os.PathLike, times: np.ndarray, f0: np.ndarray,
                 confidence: np.ndarray, fmt: str = "txt") -> None:
    """Write a melody file in ``fmt``, atomically."""
    _, formatter = FORMATS[fmt]
    write_text_atomic(path, formatter(np.asarray(times), np.asarray(f0), np.asarray(confidence)))
