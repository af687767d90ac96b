"""Validated argument types shared by every command line: finite numbers in stated ranges.

Each factory returns an ``argparse`` type whose error names the accepted range,
so a bad value (``nan``, ``inf``, a negative count, a rate WORLD cannot
analyse) is one usage line before any work, never a silent wrong result.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

MAX_BATCH = 512
"""Windows per batch. The first ResNet block alone holds 31 x 513 x 64 float32 activations (4 MB) per window
and layer, and training keeps several of them per window: far beyond 512 a batch no longer fits in 24 GB."""
MIN_SYNTH_RATE = 16000
"""WORLD analysis here (harvest up to 1000 Hz, the voicing gate's 100-3000 Hz aperiodicity band) needs it."""
MAX_RATE = 192000


def _describe(low: float | None, high: float | None, low_open: bool) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}" + (f" (above {low:g})" if low_open else "")
    if low is not None:
        return f"{'above' if low_open else 'at least'} {low:g}"
    return f"at most {high:g}"


def number(low: float | None = None, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """A finite float in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        inside = math.isfinite(value) and (low is None or (value > low if low_open else value >= low)) \
            and (high is None or value <= high)
        if not inside:
            raise argparse.ArgumentTypeError(f"expected a finite number {_describe(low, high, low_open)}, got {text!r}")
        return value

    return parse


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            wanted = "a positive integer" if (low, high) == (1, None) else f"an integer {_describe(low, high, False)}"
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


positive_int = integer(1)
positive_float = number(0.0, None, low_open=True)
share = number(0.0, 1.0)
seed = integer(0, 2**32 - 1)
batch_size = integer(1, MAX_BATCH)
synth_rate = integer(MIN_SYNTH_RATE, MAX_RATE)


def gpu_indices(text: str) -> str:
    """GPU indices as CUDA numbers them: ``0`` or ``0,1``."""
    parts = text.split(",")
    if not all(p.strip().isdigit() for p in parts) or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(f"expected GPU indices like 0 or 0,1, got {text!r}")
    return ",".join(p.strip() for p in parts)


def odd_kernel(text: str) -> int:
    """A median-filter size: 0 or 1 (none) or an odd number up to 101."""
    value = integer(0, 101)(text)
    if value > 1 and value % 2 == 0:
        raise argparse.ArgumentTypeError(f"median filter size must be 0 or an odd number, got {text}")
    return value


def voicing_rule(text: str) -> float | str:
    """A voicing rule: ``tuned`` (the bundle's threshold), ``argmax`` (the paper's) or a threshold in [0, 1]."""
    if text in ("tuned", "argmax"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"voicing threshold must be tuned, argmax or a number, got {text}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"voicing threshold must be between 0 and 1, got {text}")
    return value
