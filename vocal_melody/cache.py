"""Content-keyed, interruption-safe caches of arrays on disk.

Keys combine a digest of the input file's bytes with the parameters that
produced the arrays, so a changed file or parameter never reuses a stale
entry. Entries are written to a temporary file and renamed: a killed
process leaves no half-written entry that could later be read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from vocal_melody.fileio import atomic_path

DEFAULT_CACHE_ROOT = Path("cache")
"""Every command's ``--cache-dir``: one root, each kind of entry in its own subfolder (features, pseudo, world)."""


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-1 of a file's bytes (hex, 20 characters)."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:20]


def cache_key(*parts: object) -> str:
    """A short stable key for JSON-serialisable parts (digests, parameter dicts)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:24]


class ArrayCache:
    """A folder of ``KEY.npz`` entries, each a dict of arrays."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The entry's arrays, or None if absent or unreadable (then it is recomputed)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError):
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> Path:
        """Store an entry atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        with atomic_path(path) as temp:
            with open(temp, "wb") as handle:
                np.savez(handle, **arrays)
        return path
