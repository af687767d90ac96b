"""Audio to model input: decoding, 8 kHz mono, log-magnitude STFT, 31-frame windows.

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

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from melody.errors import MelodyError

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
MIN_INPUT_RATE = 4000
"""Below this sample rate the voice's pitch range cannot be represented."""

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

FFMPEG_EXTENSIONS = (".mp4", ".m4a", ".m4b", ".aac", ".mov", ".webm", ".mka", ".wma", ".opus")
"""Formats decoded with ffmpeg rather than libsndfile."""


# ----------------------------------------------------------------------------- decoding

def _check_audio_file(path: Path) -> None:
    if not path.exists():
        raise MelodyError(f"{path}: no such file")
    if path.is_dir():
        raise MelodyError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise MelodyError(f"{path}: file is empty (0 bytes)")


def _read_with_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data, int(rate)


def _ffprobe_stream(path: Path, stream: int) -> tuple[int, int]:
    command = ["ffprobe", "-v", "error", "-select_streams", f"a:{stream}",
               "-show_entries", "stream=sample_rate,channels", "-of", "json", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    streams = json.loads(result.stdout or "{}").get("streams", []) if result.returncode == 0 else []
    if not streams:
        raise MelodyError(f"{path}: not a readable audio file (ffmpeg finds no audio stream {stream})")
    return int(streams[0]["sample_rate"]), int(streams[0]["channels"])


def _read_with_ffmpeg(path: Path, stream: int = 0) -> tuple[np.ndarray, int]:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise MelodyError(f"{path}: decoding this format needs ffmpeg, which is not installed "
                          "(apt-get install ffmpeg)")
    rate, channels = _ffprobe_stream(path, stream)
    command = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{stream}",
               "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        detail = message[-1] if message else "ffmpeg failed"
        raise MelodyError(f"{path}: cannot decode audio ({detail})")
    data = np.frombuffer(result.stdout, dtype="<f4")
    usable = len(data) - len(data) % channels
    return data[:usable].reshape(-1, channels).copy(), rate


def decode_audio(path: str | os.PathLike, stream: int = 0) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 samples of shape (n, channels) and its rate.

    WAV/FLAC/OGG/MP3 and the other libsndfile formats are read with
    soundfile; MP4/M4A/AAC (and anything libsndfile rejects) with ffmpeg.
    ``stream`` selects the audio stream of a multi-stream file (0 = the
    first, which is the mix in a "stem" MP4).
    """
    path = Path(path)
    _check_audio_file(path)
    if path.suffix.lower() in FFMPEG_EXTENSIONS or stream != 0:
        return _read_with_ffmpeg(path, stream)
    try:
        return _read_with_soundfile(path)
    except Exception as soundfile_error:  # libsndfile rejects it: try ffmpeg before giving up
        if shutil.which("ffmpeg") is None:
            raise MelodyError(f"{path}: not a readable audio file ({soundfile_error})") from None
        try:
            return _read_with_ffmpeg(path, stream)
        except MelodyError:
            raise MelodyError(f"{path}: not a readable audio file") from None


def to_model_rate(samples: np.ndarray, rate: int, name: str = "audio") -> np.ndarray:
    """Downmix (average channels) and resample to 8 kHz with soxr; validates the signal."""
    import soxr

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    elif samples.ndim != 1:
        raise MelodyError(f"{name}: expected a 1-D or (samples, channels) array, got shape {samples.shape}")
    if samples.size == 0:
        raise MelodyError(f"{name}: audio has no samples")
    if not np.isfinite(samples).all():
        raise MelodyError(f"{name}: audio contains NaN or infinite samples")
    if rate < MIN_INPUT_RATE:
        raise MelodyError(f"{name}: sample rate {rate} Hz is too low (at least {MIN_INPUT_RATE} Hz needed)")
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
        if samples.size == 0:  # a few input samples can resample to none
            samples = np.zeros(1, dtype=np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32)


def load_audio(path: str | os.PathLike, stream: int = 0) -> np.ndarray:
    """Load any common audio file as mono float32 at 8 kHz."""
    samples, rate = decode_audio(path, stream)
    return to_model_rate(samples, rate, name=str(path))


# ----------------------------------------------------------------------------- features

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
    reference = magnitude.max() if magnitude.size else 1.0
    db = 10.0 * np.log10(np.maximum(AMIN, magnitude)) - 10.0 * np.log10(max(AMIN, reference))
    return np.maximum(db, db.max() - TOP_DB).astype(np.float32)


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
    n_frames = spec.shape[0]
    n_windows = -(-n_frames // WINDOW_FRAMES)
    padding = n_windows * WINDOW_FRAMES - n_frames
    if padding:
        fill = np.full((padding, spec.shape[1]), spec.min(), dtype=spec.dtype)
        spec = np.concatenate([spec, fill], axis=0)
    return spec.reshape(n_windows, WINDOW_FRAMES, spec.shape[1])


def normalize(windows: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-(frame, bin) standardisation with training statistics of shape (31, 513)."""
    return ((windows - mean) / (std + STD_EPSILON)).astype(np.float32)


def feature_windows(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """8 kHz audio to un-normalised windows (n_windows, 31, 513) and the real frame count."""
    spec = spectrogram(audio)
    return make_windows(spec), spec.shape[0]
