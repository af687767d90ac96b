import os

import numpy as np
import pytest
from conftest import harmonic_tone, write_wav

from vocal_melody import features as fe
from vocal_melody.audio import load_audio, stream_audio
from vocal_melody.inference import decoding
from vocal_melody.inference import extractor as cli


@pytest.mark.parametrize("n", [1, 700, 1025, 80 * 311 + 7])
def test_streaming_stft_equals_one_shot(n):
    signal = np.random.default_rng(n).standard_normal(n)
    expected = fe.magnitude_spectrogram(signal)
    for block in (1, 333, 4096):
        stft = fe.StreamingSTFT()
        parts = [stft.push(signal[i:i + block]) for i in range(0, n, block)] + [stft.finish()]
        np.testing.assert_array_equal(np.concatenate(parts), expected)


def test_streamed_decoding_equals_loading_at_once(tmp_path):
    audio = np.stack([harmonic_tone(220, 7.3, 44100), harmonic_tone(330, 7.3, 44100)], axis=1)
    path = write_wav(tmp_path / "long.wav", audio, 44100)
    blocks = list(stream_audio(path, 8000, block_seconds=1.1))
    assert len(blocks) > 5
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path, 8000))


@pytest.mark.parametrize("held_seconds", [cli.HELD_AUDIO_SECONDS, 5])  # audio kept in memory / decoded twice
def test_streaming_extraction_equals_the_one_shot_path(tmp_path, tiny_bundle, held_seconds, monkeypatch):
    monkeypatch.setattr(cli, "HELD_AUDIO_SECONDS", held_seconds)
    decodes = []
    original = cli._blocks
    monkeypatch.setattr(cli, "_blocks", lambda *a: (lambda: decodes.append(1) or original(*a)()))
    rng = np.random.default_rng(0)
    audio = harmonic_tone(200, 11.7, 16000) + 0.05 * rng.standard_normal(int(11.7 * 16000)).astype(np.float32)
    path = write_wav(tmp_path / "song.wav", audio, 16000)
    extractor = cli.MelodyExtractor(tiny_bundle, batch_size=3, engine="tf")  # chunks of 93 frames
    times, f0, confidence = cli.extract_melody(path, extractor=extractor, subbin=True)
    samples = fe.load_audio(path)
    expected_f0, expected_confidence = decoding.decode(extractor.activations(samples), subbin=True)
    assert len(times) == fe.n_frames_for(samples.size) == 1171  # not a multiple of 93 nor of 31
    assert len(decodes) == (1 if held_seconds > 11.7 else 2)
    np.testing.assert_allclose(f0, expected_f0, rtol=1e-6)
    np.testing.assert_allclose(confidence, expected_confidence, atol=1e-6)


@pytest.mark.heavy
def test_openvino_engine_matches_tensorflow(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pytest.importorskip("openvino")
    from vocal_melody.bundle import read_bundle
    from vocal_melody.inference.engines import OpenVINOEngine, TFEngine

    bundle = read_bundle(tiny_bundle)
    windows = np.random.default_rng(1).standard_normal((5, 31, 513, 1)).astype(np.float32)
    reference = TFEngine(bundle)(windows)
    fast = OpenVINOEngine(bundle)
    assert fast(windows).shape == (5, 31, 442)
    assert np.abs(fast(windows) - reference).max() < 2e-3
    assert list((tmp_path / "cache" / "vocal-melody" / "openvino").iterdir())  # the user's cache folder


def test_fast_path_does_not_import_tensorflow_once_converted(tmp_path, tiny_bundle):
    import subprocess
    import sys

    from conftest import ROOT

    pytest.importorskip("openvino")
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(220, 0.5, 8000), 8000)
    code = ("import sys; import vocal_melody as m; "
            "m.extract_melody({wav!r}, weights={weights!r}); print('tensorflow' in sys.modules)")
    command = [sys.executable, "-c", code.format(root=str(ROOT), wav=str(wav), weights=str(tiny_bundle))]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)  # converts and caches
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert second.stdout.strip() == "False"


@pytest.mark.heavy
@pytest.mark.parametrize("onednn", ["1", "0"])  # "0": TensorFlow's own kernels, its default on AVX2-only CPUs
def test_tensorflow_engine_memory_stays_low_with_the_full_model(onednn):
    """Eager Keras held about 100 MB per window (6.9 GB on a 2-minute file); a graph of TensorFlow's own kernels
    1.6 GB on the demo song; the XLA-compiled sub-batches hold neither."""
    import subprocess
    import sys

    from conftest import ROOT

    script = ("from vocal_melody import MelodyExtractor, extract_melody\n"
              f"extract_melody({str(ROOT / 'audio' / 'demo_song.wav')!r}, extractor=MelodyExtractor(engine='tf'))\n"
              "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn})
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mb = int(done.stdout.split()[-1]) / 1024
    assert peak_mb < 1500, peak_mb
