"""Audio decoding: any common file to float32 samples, mono, at a chosen rate.

WAV/FLAC/OGG/MP3 and the other libsndfile formats are read with soundfile;
MP4/M4A/AAC (and anything libsndfile rejects) with ffmpeg. Channels are
averaged; resampling uses soxr at high quality. Every problem is a one-line
:class:`MelodyError` naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from .errors import MelodyError

MIN_INPUT_RATE = 4000
"""Below this sample rate the voice's pitch range cannot be represented."""

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


def to_mono_rate(samples: np.ndarray, rate: int, target_rate: int, name: str = "audio") -> np.ndarray:
    """Downmix (average channels) and resample to ``target_rate`` with soxr; validates the signal."""
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
    if rate != target_rate:
        samples = soxr.resample(samples, rate, target_rate, quality="HQ").astype(np.float32)
        if samples.size == 0:  # a few input samples can resample to none
            samples = np.zeros(1, dtype=np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int, stream: int = 0) -> np.ndarray:
    """Load any common audio file as mono float32 at ``sample_rate``."""
    samples, rate = decode_audio(path, stream)
    return to_mono_rate(samples, rate, sample_rate, name=str(path))
