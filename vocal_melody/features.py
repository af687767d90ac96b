"""Audio to model input: 8 kHz mono, log-magnitude STFT, 31-frame windows.

One definition used by inference and training (the paper's feature path):

    audio -> mono (average of channels) -> 8 kHz (soxr, high quality)
          -> STFT (n_fft 1024, hop 80 = 10 ms, Hann window 1024, centred,
             reflect padding as in the librosa of the original code)
          -> |S| -> power_to_db(|S|, ref=max) (applied to the magnitude,
             as the original does) -> float32
          -> windows of 31 frames -> (x - mean) / (std + 1e-4)

Frame ``j`` is centred at ``j * 0.01`` s; a signal of ``n`` samples at
8 kHz has ``1 + n // 80`` frames.
"""

from __future__ import annotations

import os

import numpy as np

from vocal_melody import audio as audio_io
from vocal_melody.audio import decode_audio, to_mono_rate  # noqa: F401 (re-exported for users)

SAMPLE_RATE = 8000
"""Model sample rate in Hz."""
N_FFT = 1024
HOP_LENGTH = 80
"""10 ms at 8 kHz."""
WIN_LENGTH = 1024
N_BINS = N_FFT // 2 + 1
"""Frequency bins per frame (513)."""
FRAME_SECONDS = HOP_LENGTH / SAMPLE_RATE
WINDOW_FRAMES = 31
"""Frames per model input window."""
AMIN = 1e-10
TOP_DB = 80.0
"""``power_to_db`` floor: values are clipped to (max - 80 dB)."""
STD_EPSILON = 1e-4
"""Added to the std in normalisation, as in the original code."""

FEATURE_DEFINITION = {
    "sample_rate": SAMPLE_RATE,
    "n_fft": N_FFT,
    "hop_length": HOP_LENGTH,
    "win_length": WIN_LENGTH,
    "window_frames": WINDOW_FRAMES,
    "db": "power_to_db(|S|, ref=max, amin=1e-10, top_db=80)",
    "pad_mode": "reflect",
}
"""Stored inside every weights bundle, and checked when one is loaded."""


def to_model_rate(samples: np.ndarray, rate: int, name: str = "audio") -> np.ndarray:
    """Downmix and resample samples (n, or n x channels) to the model's 8 kHz."""
    return to_mono_rate(samples, rate, SAMPLE_RATE, name=name)


def load_audio(path: str | os.PathLike, stream: int = 0) -> np.ndarray:
    """Load any common audio file as mono float32 at the model's 8 kHz.

    ``stream`` selects the audio stream of a multi-stream file (0 = the
    first, which is the mix in a "stem" MP4).
    """
    return audio_io.load_audio(path, SAMPLE_RATE, stream)


def n_frames_for(n_samples: int) -> int:
    """Number of STFT frames for a signal of ``n_samples`` at 8 kHz (centred frames)."""
    return 1 + n_samples // HOP_LENGTH


def frame_times(n_frames: int) -> np.ndarray:
    """Time in seconds of the centre of each frame: 0.00, 0.01, ..."""
    return np.arange(n_frames) * FRAME_SECONDS


def _hann(length: int) -> np.ndarray:
    # periodic Hann, as scipy.signal.get_window("hann", fftbins=True) used by librosa
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)).astype(np.float64)


def magnitude_spectrogram(audio: np.ndarray) -> np.ndarray:
    """|STFT| of 8 kHz audio, shape (n_frames, 513), matching ``librosa.stft(center=True, pad_mode="reflect")``."""
    audio = np.asarray(audio, dtype=np.float64)
    n_frames = n_frames_for(audio.size)
    # numpy cannot reflect a single sample; librosa repeats it (edge), so do we
    padded = np.pad(audio, N_FFT // 2, mode="reflect" if audio.size > 1 else "edge")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    return np.abs(np.fft.rfft(frames * _hann(WIN_LENGTH), axis=1))


def magnitude_to_db(magnitude: np.ndarray) -> np.ndarray:
    """``librosa.power_to_db(magnitude, ref=np.max)`` with its defaults (amin 1e-10, top_db 80)."""
    magnitude = np.asarray(magnitude, dtype=np.float64)
    return db_with_reference(magnitude, float(magnitude.max()) if magnitude.size else 1.0)


def spectrogram(audio: np.ndarray) -> np.ndarray:
    """Log-magnitude spectrogram in dB, float32, shape (n_frames, 513)."""
    return magnitude_to_db(magnitude_spectrogram(audio))


def make_windows(spec: np.ndarray) -> np.ndarray:
    """Split (n_frames, 513) into (n_windows, 31, 513) non-overlapping windows.

    The last window is padded with the spectrogram's minimum (silence), not
    with 0 dB (the loudest value) as the original did: padding leaks into
    the BiLSTM's view of the real frames. Callers drop padded frames from the
    output with ``[:n_frames]``.
    """
    spec = pad_to_windows(spec, float(spec.min()) if spec.size else 0.0)
    return spec.reshape(-1, WINDOW_FRAMES, spec.shape[1])


def pad_to_windows(frames: np.ndarray, fill: float) -> np.ndarray:
    """Frames (n, bins) padded at the end with ``fill`` to a whole number of 31-frame windows."""
    padding = -len(frames) % WINDOW_FRAMES
    if not padding:
        return frames
    return np.concatenate([frames, np.full((padding, frames.shape[1]), fill, dtype=frames.dtype)], axis=0)


def normalize(windows: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-(frame, bin) standardisation with training statistics of shape (31, 513)."""
    return ((windows - mean) / (std + STD_EPSILON)).astype(np.float32)


def feature_windows(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """8 kHz audio to un-normalised windows (n_windows, 31, 513) and the real frame count."""
    spec = spectrogram(audio)
    return make_windows(spec), spec.shape[0]


class StreamingSTFT:
    """|STFT| frames of a signal arriving in blocks, identical to :func:`magnitude_spectrogram` on the whole.

    ``push(block)`` returns the frames that became complete; ``finish()``
    returns the rest (with the reflect padding of the signal's end). Only a
    frame's worth of samples is kept between calls.
    """

    def __init__(self) -> None:
        self._head: list[np.ndarray] = []   # samples before the start padding is known
        self._buffer = np.zeros(0, np.float64)
        self._started = False
        self._n_samples = 0
        self._frames_out = 0

    def _frames(self, count: int) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(self._buffer, N_FFT)[::HOP_LENGTH][:count]
        magnitude = np.abs(np.fft.rfft(frames * _hann(WIN_LENGTH), axis=1))
        self._buffer = self._buffer[count * HOP_LENGTH:]
        self._frames_out += count
        return magnitude

    def push(self, block: np.ndarray) -> np.ndarray:
        """The magnitude frames (n, 513) that are complete once ``block`` (8 kHz samples) is added."""
        block = np.asarray(block, dtype=np.float64)
        self._n_samples += block.size
        if not self._started:
            self._head.append(block)
            head = np.concatenate(self._head)
            if head.size <= N_FFT:
                return np.zeros((0, N_BINS))
            # reflect padding of the start needs samples 1..512 only
            self._buffer = np.concatenate([head[1:N_FFT // 2 + 1][::-1], head])
            self._head, self._started = [], True
        else:
            self._buffer = np.concatenate([self._buffer, block])
        available = 0 if len(self._buffer) < N_FFT else 1 + (len(self._buffer) - N_FFT) // HOP_LENGTH
        return self._frames(available) if available else np.zeros((0, N_BINS))

    def finish(self) -> np.ndarray:
        """The remaining frames, up to exactly the one-shot STFT's frame count."""
        total = n_frames_for(self._n_samples)
        if not self._started:  # a short signal: the one-shot path
            return magnitude_spectrogram(np.concatenate(self._head) if self._head else np.zeros(0))
        tail = self._buffer[-(N_FFT // 2 + 1):-1][::-1]
        self._buffer = np.concatenate([self._buffer, tail])
        return self._frames(total - self._frames_out)


def db_with_reference(magnitude: np.ndarray, reference: float) -> np.ndarray:
    """:func:`magnitude_to_db` of some frames, given the whole signal's maximum magnitude."""
    reference_db = 10.0 * np.log10(max(AMIN, reference))
    db = 10.0 * np.log10(np.maximum(AMIN, np.asarray(magnitude, dtype=np.float64))) - reference_db
    top = 10.0 * np.log10(max(AMIN, reference)) - reference_db  # the whole signal's maximum dB
    return np.maximum(db, top - TOP_DB).astype(np.float32)
