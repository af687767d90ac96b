"""Extraction with the shipped weights needs no TensorFlow (``pip install .`` without extras has none); what does
need it fails in one line that names the extra."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT, make_tone_corpus, save_random_bundle

from vocal_melody.bundle import shipped_models

BLOCK = """
import sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""


def run_blocked(code: str, cwd, blocked=("tensorflow", "keras")) -> subprocess.CompletedProcess:
    """``code`` in a Python where the ``blocked`` packages cannot be imported, as if not installed."""
    # a cache folder of its own: a model converted earlier in the session would need no TensorFlow
    env = dict(os.environ, XDG_CACHE_HOME=str(cwd / "user-cache"))
    return subprocess.run([sys.executable, "-c", BLOCK.format(blocked=tuple(blocked)) + code], capture_output=True,
                          text=True, timeout=600, cwd=cwd, env=env)


def extract(args: list[str], watched=("tensorflow", "keras")) -> str:
    """Code that runs the extraction command, then prints whether any ``watched`` package was imported."""
    return ("from vocal_melody.cli.common import run_cli\nfrom vocal_melody.cli.extract import main\n"
            f"try:\n    run_cli(main, {args!r})\n"
            f"finally:\n    print(any(name in sys.modules for name in {tuple(watched)!r}))\n")


@pytest.mark.parametrize("model", shipped_models())
def test_each_shipped_capacity_extracts_the_same_melody_without_tensorflow(model, tmp_path):
    song = str(ROOT / "audio" / "demo_song.wav")
    blocked = run_blocked(extract(["-p", song, "-o", str(tmp_path / "blocked"), "--model", model, "-q"],
                                  watched=("tensorflow", "keras", "matplotlib")),
                          tmp_path, blocked=("tensorflow", "keras", "matplotlib"))
    assert blocked.returncode == 0, blocked.stderr
    assert blocked.stdout.strip() == "False"  # none imported
    normal = subprocess.run([sys.executable, str(ROOT / "melodyExtraction_NS.py"), "-p", song, "--model", model,
                             "-o", str(tmp_path / "normal"), "-q"], capture_output=True, text=True, timeout=600)
    assert normal.returncode == 0, normal.stderr
    name = "pitch_demo_song.wav.txt"
    assert (tmp_path / "blocked" / name).read_bytes() == (tmp_path / "normal" / name).read_bytes()


def test_what_needs_tensorflow_says_so_in_one_line(tmp_path):
    song = str(ROOT / "audio" / "demo_song.wav")
    weights = save_random_bundle(tmp_path / "other.npz")  # no int8 model of its own: it must be converted
    cases = [(["-p", song, "-o", str(tmp_path / "a"), "-w", str(weights)], "other.npz: no int8 model matches them"),
             (["-p", song, "-o", str(tmp_path / "b"), "--engine", "tf"], "the tf engine needs TensorFlow")]
    for args, expected in cases:
        result = run_blocked(extract(args), tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors and expected in errors[0] and "pip install 'vocal-melody[tf]'" in errors[0], result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "a" / "pitch_demo_song.wav.txt").exists()


def test_a_training_command_without_its_extra_fails_in_one_line(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus")
    argv = ["vocal-melody-train-teacher", "--train", str(manifest), "--run-dir", str(tmp_path / "run"), "-q"]
    result = run_blocked(f"sys.argv = {argv!r}\nfrom vocal_melody.cli.entry import train_teacher\ntrain_teacher()\n",
                         tmp_path)
    assert result.returncode == 1
    assert not (tmp_path / "run" / "best.npz").exists()
    assert result.stderr.strip().splitlines() == [
        "error: this needs the tf extra (tensorflow is not installed): pip install 'vocal-melody[tf]'"]


def test_plot_without_matplotlib_says_so_in_one_line(tmp_path):
    song = str(ROOT / "audio" / "demo_song.wav")
    result = run_blocked(extract(["-p", song, "-o", str(tmp_path / "out"), "--plot"]), tmp_path,
                         blocked=("matplotlib",))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "error: --plot needs matplotlib: pip install 'vocal-melody[plot]'"
    assert not (tmp_path / "out").exists()
