"""A trainer's pseudo labels computed on a Ray cluster: one teacher per worker, written into the shared
cache that the training then reads as if it had computed them itself."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vocal_melody.batch import failure_line
from vocal_melody.cache import file_digest
from vocal_melody.errors import MelodyError
from vocal_melody.ray_batch import connect, through_workers
from vocal_melody.lab.training.student import StudentData, build_unlabeled, load_teacher


class PseudoLabelWorker:
    """A Ray actor holding one teacher: writes a file's views and pseudo labels into the shared cache."""

    def __init__(self, teacher: str, cache_dir: str, k: int, seed: int, quirk: bool, setup: str,
                 pseudo_voicing: str | float = "argmax") -> None:
        self.teacher = load_teacher(Path(teacher))
        self.digest = file_digest(teacher)
        self.store = StudentData(Path(cache_dir), k, seed, quirk, progress=False, pseudo_voicing=pseudo_voicing)
        self.setup = setup

    def prepare(self, track) -> str | None:
        try:
            build_unlabeled([track], self.store, self.teacher, self.digest, self.setup)
        except Exception as error:  # the driver reports it and stops before training
            return failure_line(Path(track.audio), error)
        return None


def prepare_on_ray(tracks: list, teacher: str | os.PathLike, cache_dir: str | os.PathLike, k: int, seed: int,
                   quirk: bool, setup: str, address: str, progress: bool = True,
                   pseudo_voicing: str | float = "argmax") -> None:
    """Pseudo labels and augmented views of ``tracks`` computed by Ray workers into ``cache_dir``.

    The training that follows reads them from the cache as if it had computed them itself.
    """
    connect(address)
    from tqdm import tqdm

    init = (str(Path(teacher).resolve()), str(Path(cache_dir).resolve()), k, seed, quirk, setup, pseudo_voicing)
    failures = []
    with tqdm(total=len(tracks), desc="pseudo labels (Ray)", unit="track", disable=not progress,
              file=sys.stderr) as bar:
        for _, error in through_workers(PseudoLabelWorker, init, tracks, lambda w, t: w.prepare.remote(t),
                                         name=lambda track: track.audio):
            if error:
                failures.append(error)
            bar.update(1)
    if failures:
        raise MelodyError(f"{len(failures)} unlabeled file(s) failed on Ray; the first: {failures[0]}")
