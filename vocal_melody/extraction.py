"""The extraction command as a library function: :class:`ExtractionRequest` in, melody files out.

``vocal-melody`` / ``melodyExtraction_NS.py`` parse their arguments into a request and call
:func:`extract_files`; a program can do the same without a command line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from vocal_melody.batch import FileOptions, extract_locally, plan_jobs
from vocal_melody.bundle import model_weights
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import collect_audio_files, ensure_output_dir
from vocal_melody.inference.extractor import DEFAULT_BATCH_SIZE, MelodyExtractor
from vocal_melody.runtime import PLOT_EXTRA_HINT, configure_runtime, matplotlib_available, require_gpus


@dataclass
class ExtractionRequest:
    """Which files, with which weights and engine, written how and where (the CLI's options, by name)."""

    inputs: list[str]
    output_dir: str = "./results/"
    weights: str | None = None
    """A bundle file; None: the shipped bundle of ``model``."""
    model: str | None = None
    """A shipped capacity (``full``, the default, or a distilled smaller one); only without ``weights``."""
    engine: str = "auto"
    gpu_index: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    file_options: FileOptions = field(default_factory=FileOptions)
    plot: bool = False
    recursive: bool = False
    skip_existing: bool = False
    ray: str | None = None
    quiet: bool = False
    verbose: bool = False
    debug: bool = False


def extract_files(request: ExtractionRequest) -> int:
    """Write the melody of every input; one ``error:`` line per bad input; returns the exit code (0 all written,
    1 any failure). Raises :class:`MelodyError` when nothing can start (no input, unusable weights)."""
    if request.plot and not matplotlib_available():
        raise MelodyError(f"--plot needs matplotlib: {PLOT_EXTRA_HINT}")
    configure_runtime(request.gpu_index, request.verbose)
    # a GPU is TensorFlow's: with -gpu, "auto" means the TensorFlow engine on that GPU
    engine = "tf" if request.engine == "auto" and request.gpu_index is not None else request.engine
    require_gpus(request.gpu_index)
    weights = str(model_weights(request.model, request.weights))
    extractor = MelodyExtractor(weights, batch_size=request.batch_size, engine=engine)
    inputs, problems = collect_audio_files(request.inputs, recursive=request.recursive)
    if not inputs:
        raise MelodyError("; ".join(problems))
    extractor.engine  # noqa: B018  (weights that do not fit their model fail once here, not once per file)
    for problem in problems:  # the other inputs are still processed; the exit code says so
        print(f"error: {problem}", file=sys.stderr)
    created = not Path(request.output_dir).exists()
    output_dir = ensure_output_dir(request.output_dir)
    jobs, skipped, refused = plan_jobs(inputs, output_dir, request.file_options.format, request.plot,
                                       request.skip_existing)
    from tqdm import tqdm

    progress = tqdm(total=len(jobs), unit="file", disable=request.quiet or len(jobs) < 2, file=sys.stderr)
    if request.ray is not None:
        from vocal_melody.ray_batch import extract_on_ray

        results = extract_on_ray(jobs, request.file_options, weights, engine, request.batch_size,
                                 request.ray)
    else:
        results = extract_locally(jobs, request.file_options, extractor, request.debug, progress)
    written, failures = 0, [*problems, *refused]
    for path, error in results:
        progress.update(1)
        if error is None:
            written += 1
        else:
            failures.append(path)
            progress.write(f"error: {error}", file=sys.stderr)
    progress.close()
    if created and not written and not any(output_dir.iterdir()):
        output_dir.rmdir()  # every input failed: leave no empty folder behind
    if not request.quiet:
        summary = f"wrote {written} of {len(inputs) + len(problems)} melody files to {output_dir}"
        if skipped:
            summary += f", skipped {skipped} existing"
        if failures:
            summary += f", {len(failures)} failed"
        print(summary, file=sys.stderr)
    return 1 if failures else 0
