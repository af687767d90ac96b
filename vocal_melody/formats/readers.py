"""Readers for f0 annotation and estimate files.

Every reader returns ``(times, f0)`` as float64 arrays, f0 in Hz with
0 for unvoiced frames, times strictly increasing. With ``keep_negative``
(scoring) a negative f0 stays as written: in the MIREX/mir_eval format it is
an unvoiced frame that still carries a pitch guess, used by raw pitch and raw
chroma accuracy; otherwise (labels for training) it is unvoiced, 0.

Supported here:

- two-column text or CSV, whitespace or comma separated, optional header:
  ADC2004/MIREX05 ``*REF.txt``, MedleyDB ``*_MELODY1.csv``/``*_MELODY2.csv``,
  vocadito ``*_f0.csv`` and this tool's ``pitch_*.txt`` output;
- this tool's CSV (``time,frequency,confidence``) and JSON outputs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from vocal_melody.errors import MelodyError

_SEPARATOR = re.compile(r"[,\s;]+")
_OUR_CSV_HEADER = ["time", "frequency", "confidence"]


def _parse_rows(path: Path, text: str) -> tuple[list[str] | None, list[list[str]]]:
    header = None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f for f in _SEPARATOR.split(line) if f]
        if not rows and header is None and not _is_number(fields[0]):
            header = [f.lower() for f in fields]
            continue
        rows.append(fields)
    return header, rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def validate_f0(path: str | os.PathLike, times: np.ndarray, f0: np.ndarray,
                keep_negative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Check a (times, f0) series: finite, non-empty, strictly increasing times; negative f0 to 0 unless kept."""
    if times.size == 0:
        raise MelodyError(f"{path}: no f0 values in file")
    if not (np.isfinite(times).all() and np.isfinite(f0).all()):
        raise MelodyError(f"{path}: contains NaN or infinite values")
    decreasing = np.flatnonzero(np.diff(times) <= 0)
    if decreasing.size:
        index = int(decreasing[0]) + 1
        raise MelodyError(f"{path}: times are not increasing (row {index + 1}: "
                          f"{times[index]:g} s after {times[index - 1]:g} s)")
    if times[0] < 0:
        raise MelodyError(f"{path}: negative time {times[0]:g} s")
    return times, (f0 if keep_negative else np.where(f0 > 0, f0, 0.0))


def read_f0(path: str | os.PathLike, keep_negative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read a reference or estimate f0 file (formats in the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise MelodyError(f"{path}: no such file")
    if path.is_dir():
        raise MelodyError(f"{path}: is a folder, expected an f0 file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MelodyError(f"{path}: not a text f0 file") from None
    except OSError as error:
        raise MelodyError(f"{path}: cannot read ({error.strerror})") from None
    if path.suffix.lower() == ".json":
        return _read_json(path, text, keep_negative)
    header, rows = _parse_rows(path, text)
    if not rows:
        raise MelodyError(f"{path}: no f0 values in file")
    n_columns = {len(r) for r in rows}
    allowed = {3} if header == _OUR_CSV_HEADER else {2}
    if len(n_columns) != 1 or not n_columns <= allowed:
        found = ", ".join(str(n) for n in sorted(n_columns))
        raise MelodyError(f"{path}: expected {min(allowed)} columns (time, f0 in Hz), found {found}")
    try:
        values = np.array([[float(v) for v in row[:2]] for row in rows], dtype=np.float64)
    except ValueError as error:
        raise MelodyError(f"{path}: non-numeric value ({error})") from None
    return validate_f0(path, values[:, 0], values[:, 1], keep_negative)


def _read_json(path: Path, text: str, keep_negative: bool) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = json.loads(text)
        times = np.asarray(data["time"], dtype=np.float64)
        f0 = np.asarray(data["frequency"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as error:
        raise MelodyError(f"{path}: not a melody JSON file with 'time' and 'frequency' "
                          f"({type(error).__name__})") from None
    if times.shape != f0.shape or times.ndim != 1:
        raise MelodyError(f"{path}: 'time' and 'frequency' differ in length")
    return validate_f0(path, times, f0, keep_negative)
