"""Vocal melody extraction with the teacher-student CRNN (Kum et al., ISMIR 2020): a loaded model
(:class:`MelodyExtractor`) and the streaming :func:`extract_melody`.

    from vocal_melody import extract_melody
    times, f0, confidence = extract_melody("song.mp3")
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from vocal_melody import features, labels
from vocal_melody.audio import stream_audio
from vocal_melody.bundle import DEFAULT_WEIGHTS, Bundle, model_weights, read_bundle, shipped_models
from vocal_melody.errors import MelodyError
from vocal_melody.inference.decoding import decode, median_smoothed, pitch_guess
from vocal_melody.inference.engines import ENGINES, Engine, in_batches, make_engine

__all__ = ["DEFAULT_WEIGHTS", "DEFAULT_BATCH_SIZE", "MelodyExtractor", "extract_melody", "prepare_audio",
           "shipped_models"]


DEFAULT_BATCH_SIZE = 64
"""Windows per model call: large enough for throughput, small enough for flat memory."""


class MelodyExtractor:
    """A loaded model, reused for every file of a batch.

    ``weights`` is a bundle path (see :mod:`vocal_melody.bundle`) or an already
    read :class:`Bundle`; without it, ``model`` names a shipped capacity (``"full"``,
    the paper's CRNN and the default, or a smaller distilled one: :func:`shipped_models`).
    ``engine`` is one of :data:`vocal_melody.inference.engines.ENGINES`:
    ``"auto"`` (the bundle's int8 model if shipped, else OpenVINO, else
    TensorFlow), ``"int8"``, ``"openvino"`` or ``"tf"`` (the float32
    reference). The engine is created on first use.
    """

    def __init__(self, weights: str | os.PathLike | Bundle | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, engine: str = "auto", model: str | None = None) -> None:
        self.bundle = weights if isinstance(weights, Bundle) else read_bundle(
            model_weights(model, weights), expected_features=features.FEATURE_DEFINITION)
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
        return self.bundle.decoding.voicing_threshold

    def voicing_threshold(self, rule: float | str | None) -> float | None:
        """The threshold a voicing rule asks for: "tuned" (the bundle's), "argmax"/None (the paper's) or a number."""
        if rule == "tuned":
            return self.tuned_voicing_threshold
        if rule == "argmax":
            return None
        return rule

    @property
    def engine(self) -> Engine:
        """The inference engine (built on first use; TensorFlow is imported only if needed)."""
        if self._engine is None:
            self._engine = make_engine(self.bundle, self.engine_name)
        return self._engine

    def run(self, windows_db: np.ndarray) -> np.ndarray:
        """Softmax (n, 31, 442) of un-normalised dB windows (n, 31, 513), in batches."""
        def call(batch: np.ndarray) -> np.ndarray:
            return self.engine(features.normalize(batch, self.bundle.mean, self.bundle.std)[..., None])

        return in_batches(call, windows_db, self.batch_size)

    def activations_from_spectrogram(self, spec: np.ndarray) -> np.ndarray:
        """Per-frame softmax, shape (n_frames, 442), of a whole (n_frames, 513) dB spectrogram."""
        windows = features.make_windows(np.asarray(spec, dtype=np.float32))
        return self.run(windows).reshape(-1, labels.N_CLASSES)[:len(spec)]

    def activations(self, audio: np.ndarray) -> np.ndarray:
        """Per-frame softmax, shape (n_frames, 442), for mono 8 kHz audio (held in memory)."""
        return self.activations_from_spectrogram(features.spectrogram(audio))


def prepare_audio(audio: str | os.PathLike | np.ndarray, sample_rate: int | None = None) -> np.ndarray:
    """A path, or an array with its sample rate, as mono float32 at 8 kHz."""
    if isinstance(audio, (str, os.PathLike)):
        return features.load_audio(audio)
    if sample_rate is None:
        raise MelodyError("a sample_rate is needed when audio is given as an array")
    return features.to_model_rate(np.asarray(audio), int(sample_rate), name="audio array")


def _blocks(audio: str | os.PathLike | np.ndarray,
            sample_rate: int | None) -> Callable[[], Iterator[np.ndarray]]:
    """A function returning a fresh iterator of 8 kHz mono blocks (files are decoded again each time)."""
    if isinstance(audio, (str, os.PathLike)):
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
                   weights: str | os.PathLike | Bundle | None = None,
                   median_filter: int = 0, subbin: bool = False,
                   voicing_threshold: float | str | None = "tuned",
                   extractor: MelodyExtractor | None = None,
                   progress: bool = False, unvoiced_pitch: bool = False,
                   model: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vocal melody of a song: ``(times, f0, confidence)``, one value per 10 ms frame.

    ``audio`` is a file path or a numpy array (samples, or samples x
    channels) with its ``sample_rate``. ``times`` are frame centres (0.00,
    0.01, ...) covering exactly the audio, ``f0`` is in Hz with 0 for no
    voice, ``confidence`` is the model's voicing probability. Pass an
    ``extractor`` to reuse a loaded model across calls; ``model`` picks a shipped capacity
    (see :class:`MelodyExtractor`) when no ``weights`` are given.

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
    extractor = extractor or MelodyExtractor(weights, model=model)
    pad_value = float(features.db_with_reference(np.array([smallest]), largest)[0])
    chunks = _ChunkPipeline(extractor, pad_value, subbin, extractor.voicing_threshold(voicing_threshold),
                             unvoiced_pitch)
    from tqdm import tqdm

    bar = tqdm(total=n_frames, unit="frame", disable=not progress, leave=False, file=sys.stderr, delay=2.0,
               desc="audio", unit_scale=features.FRAME_SECONDS, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s")
    stft = features.StreamingSTFT()
    pending = np.zeros((0, features.N_BINS), np.float32)
    for block in blocks():
        pending = np.concatenate([pending, features.db_with_reference(stft.push(block), largest)])
        while len(pending) >= chunks.frames:
            chunks.submit(pending[:chunks.frames])
            pending = pending[chunks.frames:]
            bar.update(chunks.frames)
    pending = np.concatenate([pending, features.db_with_reference(stft.finish(), largest)])
    for start in range(0, len(pending), chunks.frames):
        chunks.submit(pending[start:start + chunks.frames])
    f0, confidence, guess = chunks.finish(n_frames)
    bar.update(len(pending))
    bar.close()
    f0 = median_smoothed(f0, median_filter)
    if unvoiced_pitch:
        f0 = np.where(f0 > 0, f0, -guess)
    return times, f0, confidence


class _ChunkPipeline:
    """Runs chunks of dB frames through the model in a worker thread (OpenVINO and TensorFlow release the
    GIL) while the caller decodes and transforms the next chunk; decodes each result in order."""

    def __init__(self, extractor: MelodyExtractor, pad_value: float, subbin: bool, voicing_threshold: float | None,
                 unvoiced_pitch: bool) -> None:
        self.extractor, self.pad_value, self.subbin = extractor, pad_value, subbin
        self.voicing_threshold, self.unvoiced_pitch = voicing_threshold, unvoiced_pitch
        self.frames = extractor.batch_size * features.WINDOW_FRAMES
        self.worker = ThreadPoolExecutor(max_workers=1)
        self.running: list = []
        self.f0: list[np.ndarray] = []
        self.confidence: list[np.ndarray] = []
        self.guess: list[np.ndarray] = []

    def submit(self, frames_db: np.ndarray) -> None:
        """Queue one chunk; its last window is padded with the spectrogram's minimum, padded frames dropped after."""
        real = len(frames_db)
        windows = features.pad_to_windows(frames_db.astype(np.float32, copy=False), self.pad_value).reshape(
            -1, features.WINDOW_FRAMES, features.N_BINS)
        if self.running:
            self._collect()
        self.running.append((self.worker.submit(self.extractor.run, windows), real))

    def _collect(self) -> None:
        future, real = self.running.pop()
        probabilities = future.result().reshape(-1, labels.N_CLASSES)[:real]
        f0, confidence = decode(probabilities, 0, self.subbin, self.voicing_threshold)
        self.f0.append(f0)
        self.confidence.append(confidence)
        if self.unvoiced_pitch:
            self.guess.append(pitch_guess(probabilities, self.subbin))

    def finish(self, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(f0, confidence, most probable pitch or None) of every frame submitted, cut to ``n_frames``."""
        if self.running:
            self._collect()
        self.worker.shutdown()
        guess = np.concatenate(self.guess)[:n_frames] if self.unvoiced_pitch else None
        return np.concatenate(self.f0)[:n_frames], np.concatenate(self.confidence)[:n_frames], guess
