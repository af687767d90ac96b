"""``pip install .`` into a fresh virtual environment gives working console commands with the shipped weights."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from conftest import ROOT

LINE = re.compile(r"^\d+\.\d{2} \d+\.\d{4}$")


def test_pip_install_outside_the_checkout_extracts_the_demo_song(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("vocal_melody-*.whl"))
    environment = tmp_path / "env"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # the dependencies come from this environment (no download); its own vocal_melody (editable) is not
    # seen: paths added by a .pth file do not run that folder's .pth files, where the editable hook lives
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    where = subprocess.run([str(python), "-c", "import vocal_melody; print(vocal_melody.__file__, "
                            "vocal_melody.DEFAULT_WEIGHTS.is_file())"], capture_output=True, text=True, cwd=tmp_path)
    assert where.stdout.startswith(str(environment)) and where.stdout.strip().endswith("True"), where

    run = subprocess.run([str(environment / "bin" / "vocal-melody"), "-p", str(ROOT / "audio" / "demo_song.wav"),
                          "-o", str(tmp_path / "out"), "-q"], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "out" / "pitch_demo_song.wav.txt").read_text().splitlines()
    assert len(lines) > 2000 and all(LINE.match(line) for line in lines)
    voiced = [float(line.split()[1]) for line in lines if float(line.split()[1]) > 0]
    assert len(voiced) > len(lines) // 3  # the demo song is sung most of the time

    for command in ("vocal-melody-evaluate", "vocal-melody-synth", "vocal-melody-augment",
                    "vocal-melody-train-teacher", "vocal-melody-train-student"):
        helped = subprocess.run([str(environment / "bin" / command), "--help"], capture_output=True, text=True,
                                timeout=300, cwd=tmp_path)
        assert helped.returncode == 0 and helped.stdout.startswith(f"usage: {command} "), (command, helped.stderr)
