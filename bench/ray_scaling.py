"""Batch extraction throughput: the local CLI against a Ray cluster on this machine with 1 and 2 workers.

    python bench/ray_scaling.py --files 16

Copies of the demo song (30 s) under distinct names are extracted into fresh folders by
``melodyExtraction_NS.py`` alone and with ``--ray`` on a Ray head started here with 1, then 2 CPUs
(one worker each). Prints seconds, files and audio minutes per wall-clock minute, each run's start-up
included, and what that rate means for 100,000 tracks of 4 minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "audio" / "demo_song.wav"
CORPUS_TRACKS, TRACK_MINUTES = 100_000, 4.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed_batch(inputs: Path, extra: list[str], env: dict) -> float:
    out = Path(tempfile.mkdtemp(prefix="ray_bench_out_"))
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / "melodyExtraction_NS.py"), "-p", str(inputs), "-o", str(out),
                             "-q", *extra], capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    written = len(list(out.glob("pitch_*")))
    shutil.rmtree(out)
    if result.returncode != 0:
        sys.exit(f"error: the batch failed: {result.stderr.strip().splitlines()[-1:]}")
    return seconds if written else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16)
    args = parser.parse_args()
    import soundfile

    minutes_per_file = soundfile.info(str(DEMO)).duration / 60.0
    inputs = Path(tempfile.mkdtemp(prefix="ray_bench_in_"))
    for index in range(args.files):
        shutil.copyfile(DEMO, inputs / f"song{index:03d}.wav")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=os.urandom(16).hex())
    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
    rows = [("local CLI", "-", timed_batch(inputs, [], env))]
    for workers in (1, 2):
        port = _free_port()
        subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                        f"--num-cpus={workers}", "--include-dashboard=false"], check=True, capture_output=True, env=env)
        try:
            rows.append(("Ray", str(workers), timed_batch(inputs, ["--ray", f"127.0.0.1:{port}"], env)))
        finally:
            subprocess.run([ray, "stop", "--force"], capture_output=True, env=env)
    shutil.rmtree(inputs)
    print(f"{args.files} files of {minutes_per_file * 60:.1f} s ({DEMO.name}); {os.cpu_count()} CPUs")
    print("| run | workers | seconds | files/min | audio min/min | 100,000 x 4-min tracks |")
    print("|---|---|---|---|---|---|")
    for name, workers, seconds in rows:
        rate = args.files / seconds * 60.0
        audio_rate = rate * minutes_per_file
        days = CORPUS_TRACKS * TRACK_MINUTES / audio_rate / 60.0 / 24.0
        print(f"| {name} | {workers} | {seconds:.1f} | {rate:.1f} | {audio_rate:.1f} | {days:.1f} days |")


if __name__ == "__main__":
    main()
