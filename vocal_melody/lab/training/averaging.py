"""Weight averaging ("model soup"): one bundle whose weights are the mean of several students' weights.

Averaging only makes sense for models fine-tuned from one starting point (students of one teacher, or
epochs of one run): they share the normalisation statistics and lie in one basin of the loss, so
their mean is a model of its own, as fast as each of them. Models trained apart do not average.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vocal_melody.bundle import Bundle, read_bundle, save_bundle
from vocal_melody.cache import file_digest
from vocal_melody.errors import MelodyError

SHARED_CONFIG = ("features", "model")
"""Config entries that must agree between the averaged bundles (``read_bundle`` already checks the labels)."""
MEMBER_CONFIG = ("training", "state", "decoding")
"""Config entries of one member (its run, its voicing rule): kept under ``averaged_from``, not at the top."""


def average_bundles(paths: Sequence[str | os.PathLike], output: str | os.PathLike,
                    proportions: Sequence[float] | None = None) -> Path:
    """Write to ``output`` the bundle whose weights are the (weighted) mean of ``paths``' weights.

    ``proportions`` (one per bundle, positive, normalised to sum 1) default to equal shares. The
    bundles must share model, features and normalisation statistics; the result takes the
    first one's features and model, and records each source, with its training record and voicing
    rule, under ``averaged_from``: it has no voicing rule of its own (tune one on validation data).
    Every mismatch is a one-line :class:`MelodyError`.
    """
    if len(paths) < 2:
        raise MelodyError("averaging needs at least two weights bundles")
    shares = np.ones(len(paths)) if proportions is None else np.asarray(proportions, dtype=np.float64)
    if len(shares) != len(paths):
        raise MelodyError(f"{len(shares)} proportions for {len(paths)} bundles")
    if not (np.isfinite(shares).all() and (shares > 0).all()):
        raise MelodyError(f"proportions must be positive numbers, got {list(proportions or [])}")
    shares = shares / shares.sum()
    bundles = [read_bundle(path) for path in paths]
    first = bundles[0]
    for bundle in bundles[1:]:
        _check_compatible(first, bundle)
    weights = [sum(share * bundle.weights[i].astype(np.float64) for share, bundle in zip(shares, bundles))
               .astype(np.float32) for i in range(len(first.weights))]
    config = {key: value for key, value in first.config.items() if key not in MEMBER_CONFIG}
    config["averaged_from"] = [
        {"bundle": str(path), "digest": file_digest(path), "proportion": round(float(share), 6),
         **{key: bundle.config[key] for key in MEMBER_CONFIG if key in bundle.config}}
        for path, share, bundle in zip(paths, shares, bundles)]
    return save_bundle(output, weights, first.mean, first.std, config)


def _check_compatible(first: Bundle, other: Bundle) -> None:
    for key in SHARED_CONFIG:
        if first.config.get(key) != other.config.get(key):
            raise MelodyError(f"{other.path}: its {key} differ from {first.path}'s; only bundles of one "
                              "architecture and feature set can be averaged")
    if len(first.weights) != len(other.weights) or any(a.shape != b.shape for a, b in
                                                       zip(first.weights, other.weights)):
        raise MelodyError(f"{other.path}: its weight shapes differ from {first.path}'s")
    if not (np.array_equal(first.mean, other.mean) and np.array_equal(first.std, other.std)):
        raise MelodyError(f"{other.path}: its normalisation statistics differ from {first.path}'s; average "
                          "only models fine-tuned from one starting point (students of one teacher)")
