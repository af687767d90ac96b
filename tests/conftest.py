"""Shared fixtures: synthetic tones, tiny weights bundles, paths to shared data."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

SHARED_DATA = ROOT.parent / "shared" / "data"
os.environ.setdefault("VOCAL_MELODY_SHARED_DATA", str(SHARED_DATA))  # the commands' default, whatever their cwd
TINY_MODEL = {"filters": [4, 4, 4, 4], "lstm_units": 4}


@pytest.fixture
def one_cluster_at_a_time():
    """Cluster tests wait for each other across xdist workers: `ray stop --force` ends every Ray on the machine."""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "vocal-melody-test-clusters.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(autouse=True, scope="session")
def user_cache_folder(tmp_path_factory):
    """Converted models go to the user's cache folder: one for the session, not the real home."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("user-cache"))


def harmonic_tone(f0: float, seconds: float, rate: int, n_harmonics: int = 6,
                  amplitude: float = 0.3) -> np.ndarray:
    """A steady harmonic tone (1/h amplitudes) of known pitch, float32."""
    t = np.arange(int(round(seconds * rate))) / rate
    tone = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, n_harmonics + 1)
               if h * f0 < rate / 2)
    return (amplitude * tone / np.max(np.abs(tone))).astype(np.float32)


def save_random_bundle(path: Path, model_args: dict | None = None, seed: int = 0) -> Path:
    """A weights bundle with randomly initialised weights (tiny unless ``model_args`` says otherwise)."""
    from vocal_melody.model import save_random_bundle as save

    return save(path, dict(TINY_MODEL if model_args is None else model_args), seed)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A randomly initialised width-reduced model bundle, saved once per session."""
    return save_random_bundle(tmp_path_factory.mktemp("weights") / "tiny.npz")


def run_in_process(main, *args) -> subprocess.CompletedProcess:
    """Run a command's ``main`` as its script would (exit code, stdout, stderr) but in this process, where
    TensorFlow is already imported: a training smoke test then costs its training, not a new interpreter.
    Keras' global state (graphs, the mixed-precision policy) is reset afterwards."""
    import keras

    from vocal_melody.cli.common import run_cli

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run_cli(main, [str(a) for a in args])
        except SystemExit as exit_info:
            code = exit_info.code
        finally:
            keras.mixed_precision.set_global_policy("float32")
            keras.backend.clear_session()
    return subprocess.CompletedProcess([str(a) for a in args], code, out.getvalue(), err.getvalue())


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    import soundfile

    soundfile.write(str(path), samples, rate)
    return path


def make_tone_corpus(folder: Path, n_train: int = 3, n_val: int = 2, seconds: float = 1.0,
                     rate: int = 8000) -> Path:
    """A tiny labeled corpus of tones with silent gaps, with a manifest like compose writes."""
    rng = np.random.default_rng(0)
    rows = ["id,split,audio,label"]
    for split, count in (("train", n_train), ("val", n_val)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            f0 = float(rng.uniform(150, 500))
            audio = harmonic_tone(f0, seconds, rate)
            audio[: int(0.2 * rate)] = 0.0  # unvoiced lead-in
            name = f"{split}_{index}"
            write_wav(folder / split / f"{name}.wav", audio, rate)
            n_frames = 1 + int(seconds * 8000) // 80
            times = np.arange(n_frames) * 0.01
            label = np.where(times >= 0.2, f0, 0.0)
            (folder / split / f"{name}.f0.txt").write_text(
                "".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times, label)))
            rows.append(f"{name},{split},{split}/{name}.wav,{split}/{name}.f0.txt")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest
