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
import struct
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np

from vocal_melody.errors import MelodyError, warn

MIN_INPUT_RATE = 4000
"""Below this sample rate the voice's pitch range cannot be represented."""

FFMPEG_EXTENSIONS = (".mp4", ".m4a", ".m4b", ".aac", ".mov", ".webm", ".mka", ".wma", ".opus")
"""Formats decoded with ffmpeg rather than libsndfile."""


# ----------------------------------------------------------------------------- decoding

def check_audio_file(path: Path) -> None:
    """Raise a one-line error unless ``path`` is a non-empty file."""
    if not path.exists():
        raise MelodyError(f"{path}: no such file")
    if path.is_dir():
        raise MelodyError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise MelodyError(f"{path}: file is empty (0 bytes)")


def _ffprobe_stream(path: Path, stream: int) -> tuple[int, int]:
    command = ["ffprobe", "-v", "error", "-select_streams", f"a:{stream}",
               "-show_entries", "stream=sample_rate,channels", "-of", "json", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    streams = json.loads(result.stdout or "{}").get("streams", []) if result.returncode == 0 else []
    if not streams:
        raise MelodyError(f"{path}: not a readable audio file (ffmpeg finds no audio stream {stream})")
    return int(streams[0]["sample_rate"]), int(streams[0]["channels"])


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
    """Load any common audio file as mono float32 at ``sample_rate`` (decoded block by block)."""
    return np.concatenate(list(stream_audio(path, sample_rate, stream)))


def _soundfile_blocks(path: Path, block_frames: int) -> tuple[Iterator[np.ndarray], int]:
    import soundfile

    info = soundfile.info(str(path))  # raises for what libsndfile cannot read
    rate = info.samplerate
    promised = max(info.frames, _wav_header_frames(path) or 0)

    def blocks() -> Iterator[np.ndarray]:
        decoded = 0
        with soundfile.SoundFile(str(path)) as handle:
            while True:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    break
                decoded += len(block)
                yield block
        if decoded < promised:
            warn(f"{path}: truncated file: its header promises {promised / rate:.2f} s, it holds "
                 f"{decoded / rate:.2f} s; only that is used")
        elif _ogg_is_cut(path):
            warn(f"{path}: truncated file: the Ogg stream ends without its last page; only the "
                 f"{decoded / rate:.2f} s that are there are used")

    return blocks(), rate


def _wav_header_frames(path: Path) -> int | None:
    """Frames a RIFF/WAVE header promises (its data chunk's size), or None for other files.

    libsndfile quietly shortens a truncated WAV to what the file holds, so the
    promise is read from the header itself.
    """
    try:
        with open(path, "rb") as handle:
            if handle.read(12)[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    return None
                chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
                if chunk == b"fmt ":
                    block_align = struct.unpack("<H", handle.read(16)[12:14])[0]
                    handle.seek(size - 16 + (size & 1), 1)
                elif chunk == b"data":  # 0 and 0xFFFFFFFF: a streamed WAV that does not know its length
                    return size // block_align if block_align and 0 < size < 0xFFFFFFFF else None
                else:
                    handle.seek(size + (size & 1), 1)
    except (OSError, struct.error):
        return None


def _ogg_is_cut(path: Path, tail: int = 1 << 16) -> bool:
    """True for an Ogg file whose last page is incomplete or lacks the end-of-stream flag (a cut download).

    Ogg headers promise no length, so the end of the file is where a cut shows.
    """
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"OggS":
                return False
            size = handle.seek(0, 2)
            handle.seek(max(0, size - tail))
            data = handle.read()
    except OSError:
        return False
    start = data.rfind(b"OggS")
    if start < 0 or len(data) - start < 27:
        return True
    header_type, segments = data[start + 5], data[start + 26]
    table = data[start + 27:start + 27 + segments]
    if len(table) < segments:
        return True
    end = start + 27 + segments + sum(struct.unpack(f"{segments}B", table))
    return end != len(data) or not header_type & 0x04


def _ffmpeg_blocks(path: Path, stream: int, block_frames: int) -> tuple[Iterator[np.ndarray], int]:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise MelodyError(f"{path}: decoding this format needs ffmpeg, which is not installed "
                          "(apt-get install ffmpeg)")
    rate, channels = _ffprobe_stream(path, stream)
    command = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{stream}",
               "-f", "f32le", "-acodec", "pcm_f32le", "-"]

    def blocks() -> Iterator[np.ndarray]:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        frame_bytes = 4 * channels
        pending = b""
        try:
            while True:
                chunk = process.stdout.read(block_frames * frame_bytes)
                if not chunk:
                    break
                pending += chunk
                usable = len(pending) - len(pending) % frame_bytes
                if usable:
                    yield np.frombuffer(pending[:usable], dtype="<f4").reshape(-1, channels)
                    pending = pending[usable:]
            error = process.stderr.read().decode(errors="replace").strip().splitlines()
            if process.wait() != 0:
                raise MelodyError(f"{path}: cannot decode audio ({error[-1] if error else 'ffmpeg failed'})")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    return blocks(), rate


def _open_blocks(path: Path, stream: int, block_frames: int) -> tuple[Iterator[np.ndarray], int]:
    """Raw (n, channels) float32 blocks of a file and its rate: libsndfile, or ffmpeg for what it cannot read."""
    check_audio_file(path)
    if path.suffix.lower() in FFMPEG_EXTENSIONS or stream != 0:
        return _ffmpeg_blocks(path, stream, block_frames)
    try:
        return _soundfile_blocks(path, block_frames)
    except Exception:  # libsndfile rejects it: try ffmpeg before giving up
        if shutil.which("ffmpeg") is None:
            raise MelodyError(f"{path}: not a readable audio file") from None
        try:
            return _ffmpeg_blocks(path, stream, block_frames)
        except MelodyError:
            raise MelodyError(f"{path}: not a readable audio file") from None


def decode_audio(path: str | os.PathLike, stream: int = 0) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 samples of shape (n, channels) and its rate.

    WAV/FLAC/OGG/MP3 and the other libsndfile formats are read with
    soundfile; MP4/M4A/AAC (and anything libsndfile rejects) with ffmpeg.
    ``stream`` selects the audio stream of a multi-stream file (0 = the
    first, which is the mix in a "stem" MP4).
    """
    blocks, rate = _open_blocks(Path(path), stream, 1 << 18)
    try:
        parts = list(blocks)
    except MelodyError:
        raise
    except Exception as error:
        raise MelodyError(f"{path}: cannot decode audio ({type(error).__name__}: {error})") from None
    if not parts:
        return np.zeros((0, 1), np.float32), rate
    return np.concatenate(parts), rate


def stream_audio(path: str | os.PathLike, sample_rate: int, stream: int = 0,
                 block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """Decode a file block by block as mono float32 at ``sample_rate`` (memory does not grow with length).

    The concatenated blocks are bit-identical to :func:`load_audio`'s result.
    Raises :class:`MelodyError` for unreadable files, empty audio and NaN or
    infinite samples (checked block by block).
    """
    import soxr

    path = Path(path)
    probe_blocks, rate = _open_blocks(path, stream, 1 << 16)
    del probe_blocks  # not started: nothing was decoded
    if rate < MIN_INPUT_RATE:
        raise MelodyError(f"{path}: sample rate {rate} Hz is too low (at least {MIN_INPUT_RATE} Hz needed)")
    blocks, rate = _open_blocks(path, stream, max(1024, int(block_seconds * rate)))
    resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ") \
        if rate != sample_rate else None
    total = 0
    previous = None
    try:
        for block in blocks:
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if not np.isfinite(mono).all():
                raise MelodyError(f"{path}: audio contains NaN or infinite samples")
            if previous is not None:  # one block of look-ahead: the resampler must know the last one
                out = resampler.resample_chunk(previous, last=False) if resampler else previous
                total += len(out)
                if len(out):
                    yield np.ascontiguousarray(out, dtype=np.float32)
            previous = np.ascontiguousarray(mono, dtype=np.float32)
    except MelodyError:
        raise
    except Exception as error:
        raise MelodyError(f"{path}: cannot decode audio ({type(error).__name__}: {error})") from None
    if previous is None:
        raise MelodyError(f"{path}: audio has no samples")
    out = resampler.resample_chunk(previous, last=True) if resampler else previous
    total += len(out)
    if total == 0:  # a few input samples can resample to none
        out = np.zeros(1, dtype=np.float32)
    yield np.ascontiguousarray(out, dtype=np.float32)
