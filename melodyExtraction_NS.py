"""Vocal melody extraction with the teacher-student CRNN (Kum et al., ISMIR 2020).

Command line (compatible with the original ``melodyExtraction_NS.py``)::

    python melodyExtraction_NS.py -p song.mp3 -o results/
    python melodyExtraction_NS.py -p music/ "more/*.flac" --median-filter 5

writes ``results/pitch_song.mp3.txt``: one line per 10 ms frame,
``time f0`` (``"%.2f %.4f"``, 0 Hz = no voice).

Python::

    from melodyExtraction_NS import extract_melody
    times, f0, confidence = extract_melody("song.mp3")
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

import featureExtraction as features
from melody import labels
from melody.argtypes import batch_size, gpu_indices, odd_kernel
from melody.bundle import Bundle, read_bundle
from melody.engines import ENGINES, require_gpus
from melody.errors import MelodyError, OneLineParser, one_line, run_cli
from melody.fileio import collect_audio_files, ensure_output_dir
from melody.quiet import configure_runtime
from melody.writers import FORMATS, output_path, write_melody

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "melody_crnn.npz"
"""The shipped model, used when no ``-w`` is given."""
DEFAULT_BATCH_SIZE = 64
"""Windows per model call: large enough for throughput, small enough for flat memory."""


class MelodyExtractor:
    """A loaded model, reused for every file of a batch.

    ``weights`` is a bundle path (see :mod:`melody.bundle`) or an already
    read :class:`Bundle`. ``engine`` is one of :data:`melody.engines.ENGINES`:
    ``"auto"`` (the bundle's int8 model if shipped, else OpenVINO, else
    TensorFlow), ``"int8"``, ``"openvino"`` or ``"tf"`` (the float32
    reference). The engine is created on first use.
    """

    def __init__(self, weights: str | os.PathLike | Bundle = DEFAULT_WEIGHTS,
                 batch_size: int = DEFAULT_BATCH_SIZE, engine: str = "auto") -> None:
        self.bundle = weights if isinstance(weights, Bundle) else read_bundle(
            weights, expected_features=features.FEATURE_DEFINITION)
        expected_shape = (features.WINDOW_FRAMES, features.N_BINS)
        if self.bundle.mean.shape != expected_shape:
            raise MelodyError(f"{self.bundle.path}: normalisation statistics have shape "
                              f"{self.bundle.mean.shape}, expected {expected_shape}")
        if batch_size < 1:
            raise MelodyError(f"batch size must be at least 1, got {batch_size}")
        if engine not in ENGINES:
            raise MelodyError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
        self.batch_size = batch_size
        self.engine_name = engine
        self._engine = None

    @property
    def tuned_voicing_threshold(self) -> float | None:
        """The voicing threshold chosen on validation data when the bundle was trained (None: argmax)."""
        value = self.bundle.config.get("decoding", {}).get("voicing_threshold")
        return None if value is None else float(value)

    @property
    def engine(self):
        """The inference engine (built on first use; TensorFlow is imported only if needed)."""
        if self._engine is None:
            from melody.engines import make_engine

            self._engine = make_engine(self.bundle, self.engine_name)
        return self._engine

    def run(self, windows_db: np.ndarray) -> np.ndarray:
        """Softmax (n, 31, 442) of un-normalised dB windows (n, 31, 513), in batches."""
        outputs = []
        for start in range(0, len(windows_db), self.batch_size):
            batch = features.normalize(windows_db[start:start + self.batch_size], self.bundle.mean, self.bundle.std)
            outputs.append(self.engine(batch[..., None]))
        return np.concatenate(outputs) if outputs else np.zeros((0, features.WINDOW_FRAMES, labels.N_CLASSES))

    def activations_from_spectrogram(self, spec: np.ndarray) -> np.ndarray:
        """Per-frame softmax, shape (n_frames, 442), of a whole (n_frames, 513) dB spectrogram."""
        windows = features.make_windows(np.asarray(spec, dtype=np.float32))
        return self.run(windows).reshape(-1, labels.N_CLASSES)[:len(spec)]

    def activations(self, audio: np.ndarray) -> np.ndarray:
        """Per-frame softmax, shape (n_frames, 442), for mono 8 kHz audio (held in memory)."""
        return self.activations_from_spectrogram(features.spectrogram(audio))


def decode(activations: np.ndarray, median_filter: int = 0, subbin: bool = False,
           voicing_threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Turn a per-frame softmax (n_frames, 442) into f0 in Hz and a voicing confidence.

    - Voicing: a frame is voiced when its most probable class is a pitch
      (the paper's rule), or, with ``voicing_threshold``, when the voicing
      probability ``1 - p(no voice)`` reaches the threshold.
    - Pitch: the most probable pitch class; with ``subbin`` the
      probability-weighted mean pitch of the classes around it.
    - ``median_filter``: odd kernel size of a median filter over the f0
      track (the authors' evaluation used 5); 0 or 1 for none.

    Returns ``(f0_hz, confidence)``, confidence being the voicing probability.
    """
    activations = np.asarray(activations, dtype=np.float32)
    confidence = 1.0 - activations[:, 0]
    if voicing_threshold is None:
        classes = np.argmax(activations, axis=1)
    else:
        pitch_classes = 1 + np.argmax(activations[:, 1:], axis=1)
        classes = np.where(confidence >= voicing_threshold, pitch_classes, 0)
    f0 = labels.weighted_pitch(activations, classes) if subbin else labels.class_to_f0(classes)
    return median_smoothed(f0, median_filter).astype(np.float64), confidence.astype(np.float64)


def median_smoothed(f0: np.ndarray, kernel: int) -> np.ndarray:
    """The f0 track median-filtered with an odd ``kernel`` (the authors' evaluation used 5); 0 or 1: unchanged."""
    if kernel <= 1:
        return f0
    from scipy.signal import medfilt

    return medfilt(f0, kernel)


def pitch_guess(activations: np.ndarray, subbin: bool = False) -> np.ndarray:
    """The most probable pitch of every frame in Hz, voiced or not (MIREX writes it negated for unvoiced frames)."""
    activations = np.asarray(activations, dtype=np.float32)
    pitch_classes = 1 + np.argmax(activations[:, 1:], axis=1)
    guess = labels.weighted_pitch(activations, pitch_classes) if subbin else labels.class_to_f0(pitch_classes)
    return guess.astype(np.float64)


def prepare_audio(audio: str | os.PathLike | np.ndarray, sample_rate: int | None = None) -> np.ndarray:
    """A path, or an array with its sample rate, as mono float32 at 8 kHz."""
    if isinstance(audio, (str, os.PathLike)):
        return features.load_audio(audio)
    if sample_rate is None:
        raise MelodyError("a sample_rate is needed when audio is given as an array")
    return features.to_model_rate(np.asarray(audio), int(sample_rate), name="audio array")


def _blocks(audio: str | os.PathLike | np.ndarray, sample_rate: int | None):
    """A function returning a fresh iterator of 8 kHz mono blocks (files are decoded again each time)."""
    if isinstance(audio, (str, os.PathLike)):
        from melody.audio import stream_audio

        return lambda: stream_audio(audio, features.SAMPLE_RATE)
    samples = prepare_audio(audio, sample_rate)
    return lambda: iter([samples])


HELD_AUDIO_SECONDS = 20 * 60
"""Files up to this long keep their 8 kHz audio in memory after pass 1 (38 MB) instead of being decoded
again; longer ones are decoded twice, so memory stays flat however long the input."""


def _signal_stats(blocks) -> tuple[int, float, float, bool, list[np.ndarray] | None]:
    """Pass 1: sample count, the largest and smallest |STFT| (for ref=max dB), whether any sample is
    non-zero, and the blocks themselves if the audio is short enough to hold (else None)."""
    stft = features.StreamingSTFT()
    n_samples, largest, smallest, audible = 0, 0.0, np.inf, False
    held: list[np.ndarray] | None = []
    for block in blocks():
        n_samples += block.size
        if held is not None:
            held.append(block)
            if n_samples > HELD_AUDIO_SECONDS * features.SAMPLE_RATE:
                held = None
        audible = audible or bool(np.any(block))
        frames = stft.push(block)
        if frames.size:
            largest, smallest = max(largest, float(frames.max())), min(smallest, float(frames.min()))
    frames = stft.finish()
    if frames.size:
        largest, smallest = max(largest, float(frames.max())), min(smallest, float(frames.min()))
    return n_samples, largest, smallest, audible, held


def extract_melody(audio: str | os.PathLike | np.ndarray, sample_rate: int | None = None,
                   weights: str | os.PathLike | Bundle = DEFAULT_WEIGHTS,
                   median_filter: int = 0, subbin: bool = False,
                   voicing_threshold: float | str | None = "tuned",
                   extractor: MelodyExtractor | None = None,
                   progress: bool = False, unvoiced_pitch: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vocal melody of a song: ``(times, f0, confidence)``, one value per 10 ms frame.

    ``audio`` is a file path or a numpy array (samples, or samples x
    channels) with its ``sample_rate``. ``times`` are frame centres (0.00,
    0.01, ...) covering exactly the audio, ``f0`` is in Hz with 0 for no
    voice, ``confidence`` is the model's voicing probability. Pass an
    ``extractor`` to reuse a loaded model across calls.

    ``voicing_threshold``: ``"tuned"`` (default) uses the threshold on
    ``1 - p(no voice)`` chosen on validation data when the weights were
    trained, if the bundle has one, else the paper's argmax rule; ``None`` or
    ``"argmax"`` forces the paper's rule; a number sets the threshold.
    ``unvoiced_pitch``: unvoiced frames carry the negated most probable
    pitch instead of 0 (the MIREX convention, so raw pitch accuracy can be
    measured apart from voicing); voiced frames are unchanged.

    Files are streamed: decoded in blocks for the spectrogram's global
    maximum, which ``power_to_db(ref=max)`` needs, then transformed and
    run through the model chunk by chunk. Audio up to
    :data:`HELD_AUDIO_SECONDS` is kept (8 kHz) between the two passes;
    longer files are decoded a second time, so memory does not grow with
    the length of the audio. The result is identical to computing
    everything at once.
    """
    blocks = _blocks(audio, sample_rate)
    n_samples, largest, smallest, audible, held = _signal_stats(blocks)
    if held is not None:
        blocks = lambda: iter(held)  # noqa: E731  (short enough to keep: no second decode)
    n_frames = features.n_frames_for(n_samples)
    times = features.frame_times(n_frames)
    if not audible:
        # power_to_db(ref=max) turns digital silence into a flat 0 dB (loudest)
        # spectrogram the model never saw; silence has no voice by definition
        return times, np.zeros(n_frames), np.zeros(n_frames)
    extractor = extractor or MelodyExtractor(weights)
    if voicing_threshold == "tuned":
        voicing_threshold = extractor.tuned_voicing_threshold
    elif voicing_threshold == "argmax":
        voicing_threshold = None
    pad_value = float(features.db_with_reference(np.array([smallest]), largest)[0])
    chunk_frames = extractor.batch_size * features.WINDOW_FRAMES
    f0_parts, confidence_parts, guess_parts = [], [], []
    pending = np.zeros((0, features.N_BINS), np.float32)

    from concurrent.futures import ThreadPoolExecutor

    # the model runs in a worker thread (OpenVINO and TensorFlow release the GIL) while the main
    # thread decodes and transforms the next chunk
    worker = ThreadPoolExecutor(max_workers=1)
    running: list = []

    def collect() -> None:
        future, real = running.pop()
        probabilities = future.result().reshape(-1, labels.N_CLASSES)[:real]
        f0, confidence = decode(probabilities, 0, subbin, voicing_threshold)
        f0_parts.append(f0)
        confidence_parts.append(confidence)
        if unvoiced_pitch:
            guess_parts.append(pitch_guess(probabilities, subbin))

    def run_chunk(frames_db: np.ndarray) -> None:
        real = len(frames_db)  # the last window is padded with the spectrogram's minimum; padded frames dropped after
        windows = features.pad_to_windows(frames_db.astype(np.float32, copy=False), pad_value).reshape(
            -1, features.WINDOW_FRAMES, features.N_BINS)
        if running:
            collect()
        running.append((worker.submit(extractor.run, windows), real))

    from tqdm import tqdm

    bar = tqdm(total=n_frames, unit="frame", disable=not progress, leave=False, file=sys.stderr, delay=2.0,
               desc="audio", unit_scale=features.FRAME_SECONDS, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s")
    stft = features.StreamingSTFT()
    for block in blocks():
        pending = np.concatenate([pending, features.db_with_reference(stft.push(block), largest)])
        while len(pending) >= chunk_frames:
            run_chunk(pending[:chunk_frames])
            pending = pending[chunk_frames:]
            bar.update(chunk_frames)
    pending = np.concatenate([pending, features.db_with_reference(stft.finish(), largest)])
    for start in range(0, len(pending), chunk_frames):
        run_chunk(pending[start:start + chunk_frames])
    if running:
        collect()
    worker.shutdown()
    bar.update(len(pending))
    bar.close()
    f0 = np.concatenate(f0_parts)[:n_frames]
    confidence = np.concatenate(confidence_parts)[:n_frames]
    f0 = median_smoothed(f0, median_filter)
    if unvoiced_pitch:
        f0 = np.where(f0 > 0, f0, -np.concatenate(guess_parts)[:n_frames])
    return times, f0, confidence


# ----------------------------------------------------------------------------- CLI

def _probability(text: str) -> float | str:
    if text in ("tuned", "argmax"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"voicing threshold must be tuned, argmax or a number, got {text}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"voicing threshold must be between 0 and 1, got {text}")
    return value


def _is_done(path: Path) -> bool:
    """An output counts as done when it exists and is not empty (outputs are written atomically)."""
    return path.is_file() and path.stat().st_size > 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (original options first)."""
    parser = OneLineParser(
        prog="melodyExtraction_NS.py",
        description="Extract the vocal melody (f0 every 10 ms) of songs.")
    parser.add_argument("-p", "--filepath", nargs="+", required=True, metavar="PATH",
                        help="audio files, folders or glob patterns")
    parser.add_argument("-o", "--output_dir", default="./results/",
                        help="folder for pitch_NAME.EXT.txt files (default: ./results/)")
    parser.add_argument("-gpu", "--gpu_index", type=gpu_indices, default=None,
                        help="GPU index (e.g. 0 or 0,1); CPU when omitted")
    parser.add_argument("-w", "--weights", default=str(DEFAULT_WEIGHTS),
                        help="weights bundle (.npz; default: the shipped weights)")
    parser.add_argument("--median-filter", type=odd_kernel, default=0, metavar="N",
                        help="median-filter the f0 track with an odd kernel N (authors' evaluation: 5)")
    parser.add_argument("--subbin", action="store_true",
                        help="sub-bin f0: softmax-weighted mean pitch around the most probable class")
    parser.add_argument("--unvoiced-pitch", action="store_true",
                        help="write the most probable pitch of unvoiced frames as negative f0 (MIREX), so raw "
                             "pitch accuracy is measured apart from voicing")
    parser.add_argument("--voicing-threshold", type=_probability, default="tuned", metavar="P",
                        help="voiced when 1 - p(no voice) >= P; 'argmax': the paper's rule; 'tuned' (default): "
                             "the threshold chosen on validation data in training, else argmax")
    parser.add_argument("--format", choices=sorted(FORMATS), default="txt",
                        help="txt (original), csv (time,frequency,confidence), json, "
                             "sv (Sonic Visualiser / Tony: time,frequency of voiced frames)")
    parser.add_argument("--plot", action="store_true",
                        help="also write pitch_NAME.EXT.png: spectrogram with the melody on top")
    parser.add_argument("--engine", choices=list(ENGINES), default="auto",
                        help="auto: the shipped int8 model when it matches the weights and the CPU has int8 "
                             "units, else OpenVINO (bf16 where supported), else TensorFlow; "
                             "tf: the float32 reference")
    parser.add_argument("--batch-size", type=batch_size, default=DEFAULT_BATCH_SIZE,
                        help="windows of 31 frames per model call")
    parser.add_argument("-r", "--recursive", action="store_true", help="search folders recursively")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip inputs whose output file exists (resume an interrupted batch)")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run the batch on a Ray cluster (ADDRESS, e.g. 10.0.0.1:6379 or auto; alone: a "
                             "local one on this machine's cores): one model per worker CPU, outputs written "
                             "by the workers, so -o must be a folder every node sees (pip install ray)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's messages")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def plot_file(audio_path: Path, times: np.ndarray, f0: np.ndarray, png: Path) -> None:
    """Spectrogram of the audio with the melody overlaid, as a PNG."""
    from melody.plot import plot_melody

    spec = features.spectrogram(features.load_audio(audio_path))
    plot_melody(spec, features.FRAME_SECONDS, features.SAMPLE_RATE, {"melody": (times, np.maximum(f0, 0))}, png,
                title=audio_path.name)


def _extract_locally(jobs, options: dict, extractor: MelodyExtractor, debug: bool, progress):
    """(path, None or its error line) per job, in order, in this process."""
    for path, target, picture in jobs:
        progress.set_postfix_str(path.name, refresh=False)
        try:
            process_file(path, target, picture, extractor, options)
        except Exception as error:  # one bad file must not cost the rest of the batch
            if debug:  # the traceback, and the batch goes on
                import traceback

                traceback.print_exc()
            yield path, failure_line(path, error)
            continue
        yield path, None


def process_file(path: Path, target: Path, picture: Path | None, extractor: MelodyExtractor,
                 options: dict) -> None:
    """Extract one file's melody and write it (and its picture) atomically; raises on a bad file.

    ``options``: ``median_filter``, ``subbin``, ``voicing_threshold``, ``unvoiced_pitch``, ``format``,
    ``progress``, as the CLI parsed them. Used by the local batch and by the Ray workers alike.
    """
    times, f0, confidence = extract_melody(
        path, median_filter=options["median_filter"], subbin=options["subbin"],
        voicing_threshold=options["voicing_threshold"], extractor=extractor, progress=options["progress"],
        unvoiced_pitch=options["unvoiced_pitch"])
    write_melody(target, times, f0, confidence, options["format"])
    if picture is not None:
        plot_file(path, times, f0, picture)


def failure_line(path: Path, error: BaseException) -> str:
    """The one line a bad file gets in a batch."""
    return one_line(error) if isinstance(error, MelodyError) else \
        f"{path}: unexpected {type(error).__name__}: {one_line(error)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 all written, 1 any failure)."""
    args = build_parser().parse_args(argv)
    configure_runtime(args.gpu_index, args.verbose)
    # a GPU is TensorFlow's: with -gpu, "auto" means the TensorFlow engine on that GPU
    engine = "tf" if args.engine == "auto" and args.gpu_index is not None else args.engine
    require_gpus(args.gpu_index)
    extractor = MelodyExtractor(args.weights, batch_size=args.batch_size, engine=engine)
    inputs, problems = collect_audio_files(args.filepath, recursive=args.recursive)
    if not inputs:
        raise MelodyError("; ".join(problems))
    extractor.engine  # noqa: B018  (weights that do not fit their model fail once here, not once per file)
    for problem in problems:  # the other inputs are still processed; the exit code says so
        print(f"error: {problem}", file=sys.stderr)
    output_dir = ensure_output_dir(args.output_dir)

    from tqdm import tqdm

    written, skipped, failures = 0, 0, list(problems)
    owners: dict[Path, Path] = {}
    jobs = []
    for path in inputs:
        target = output_path(path, output_dir, args.format)
        picture = output_dir / f"pitch_{path.name}.png"
        if target in owners:  # same file name from two folders: never overwrite the first one's result
            failures.append(path)
            print(f"error: {path}: its output {target.name} is also {owners[target]}'s; "
                  "rename one or write them to separate -o folders", file=sys.stderr)
            continue
        owners[target] = path
        if args.skip_existing and _is_done(target) and (not args.plot or _is_done(picture)):
            skipped += 1
            continue
        jobs.append((path, target, picture if args.plot else None))
    options = {"median_filter": args.median_filter, "subbin": args.subbin, "unvoiced_pitch": args.unvoiced_pitch,
               "voicing_threshold": args.voicing_threshold, "format": args.format,
               "progress": not args.quiet and args.ray is None}
    progress = tqdm(total=len(jobs), unit="file", disable=args.quiet or len(jobs) < 2, file=sys.stderr)
    if args.ray is not None:
        from melody.ray_batch import extract_on_ray

        results = extract_on_ray(jobs, options, args.weights, engine, args.batch_size, args.ray)
    else:
        results = _extract_locally(jobs, options, extractor, args.debug, progress)
    for path, error in results:
        progress.update(1)
        if error is None:
            written += 1
        else:
            failures.append(path)
            progress.write(f"error: {error}", file=sys.stderr)
    progress.close()
    if not args.quiet:
        summary = f"wrote {written} of {len(inputs) + len(problems)} melody files to {output_dir}"
        if skipped:
            summary += f", skipped {skipped} existing"
        if failures:
            summary += f", {len(failures)} failed"
        print(summary, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
