"""A batch of files: one file's melody written atomically, job planning, the local batch loop.

The same :func:`process_file` runs in this process and in the Ray workers (:mod:`vocal_melody.ray_batch`).
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from vocal_melody import features
from vocal_melody.errors import MelodyError, one_line
from vocal_melody.formats.plot import plot_melody
from vocal_melody.formats.writers import output_path, write_melody
from vocal_melody.inference.extractor import MelodyExtractor, extract_melody

if TYPE_CHECKING:
    from tqdm import tqdm

Job = tuple[Path, Path, "Path | None"]
"""(audio file, melody file, picture file or None)."""


@dataclass(frozen=True)
class FileOptions:
    """How each file's melody is decoded and written (the CLI's options; the same in the Ray workers)."""

    median_filter: int | None = None
    subbin: bool = False
    unvoiced_pitch: bool = False
    voicing_threshold: float | str | None = "tuned"
    format: str = "txt"
    progress: bool = False


def plot_file(audio_path: Path, times: np.ndarray, f0: np.ndarray, png: Path) -> None:
    """Spectrogram of the audio with the melody overlaid, as a PNG."""
    spec = features.spectrogram(features.load_audio(audio_path))
    plot_melody(spec, features.FRAME_SECONDS, features.SAMPLE_RATE, {"melody": (times, np.maximum(f0, 0))}, png,
                title=audio_path.name)


def is_done(path: Path) -> bool:
    """An output counts as done when it exists and is not empty (outputs are written atomically)."""
    return path.is_file() and path.stat().st_size > 0


def plan_jobs(inputs: list[Path], output_dir: Path, output_format: str, plot: bool,
              skip_existing: bool) -> tuple[list[Job], int, list[Path]]:
    """(jobs to run, number skipped as done, inputs refused) for a batch.

    Two inputs with the same file name would write the same output: the second is refused, never
    overwriting the first one's result.
    """
    owners: dict[Path, Path] = {}
    jobs, skipped, refused = [], 0, []
    for path in inputs:
        target = output_path(path, output_dir, output_format)
        picture = output_dir / f"pitch_{path.name}.png"
        if target in owners:
            refused.append(path)
            print(f"error: {path}: its output {target.name} is also {owners[target]}'s; "
                  "rename one or write them to separate -o folders", file=sys.stderr)
            continue
        owners[target] = path
        if skip_existing and is_done(target) and (not plot or is_done(picture)):
            skipped += 1
            continue
        jobs.append((path, target, picture if plot else None))
    return jobs, skipped, refused


def extract_locally(jobs: list[Job], options: FileOptions, extractor: MelodyExtractor, debug: bool,
                    progress: tqdm) -> Iterator[tuple[Path, str | None]]:
    """(path, None or its error line) per job, in order, in this process."""
    for path, target, picture in jobs:
        progress.set_postfix_str(path.name, refresh=False)
        try:
            process_file(path, target, picture, extractor, options)
        except Exception as error:  # one bad file must not cost the rest of the batch
            if debug:  # the traceback, and the batch goes on
                traceback.print_exc()
            yield path, failure_line(path, error)
            continue
        yield path, None


def process_file(path: Path, target: Path, picture: Path | None, extractor: MelodyExtractor,
                 options: FileOptions) -> None:
    """Extract one file's melody and write it (and its picture) atomically; raises on a bad file.

    Used by the local batch and by the Ray workers alike.
    """
    times, f0, confidence = extract_melody(
        path, median_filter=options.median_filter, subbin=options.subbin,
        voicing_threshold=options.voicing_threshold, extractor=extractor, progress=options.progress,
        unvoiced_pitch=options.unvoiced_pitch)
    write_melody(target, times, f0, confidence, options.format)
    if picture is not None:
        plot_file(path, times, f0, picture)


def failure_line(path: Path, error: BaseException) -> str:
    """The one line a bad file gets in a batch."""
    return one_line(error) if isinstance(error, MelodyError) else \
        f"{path}: unexpected {type(error).__name__}: {one_line(error)}"
