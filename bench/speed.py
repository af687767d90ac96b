"""Speed and memory benchmark: our CLI against Essentia's Melodia on the same audio, in one run.

    python bench/speed.py                  # 10-minute input, 3 runs each, plus a 60-minute memory run
    python bench/speed.py --runs 5 --weights vocal_melody/weights/melody_crnn.npz

The inputs are MP3s (192 kbit/s, 44.1 kHz stereo) built by concatenating the songs of
../shared/data/songs (or, without them, synthesized songs) and cached in data/bench/speed/.
Every figure is measured on a separate process, from start to exit (the output file written):
wall time (median of --runs after one warm-up), peak RSS (the kernel's VmHWM), our real-time factor,
and the model's windows per second alone (engine only, batches of 64). ``--peers`` (default: the installed ones
of ``bench/peers.py``'s defaults) times each peer the same way, as a process that writes the tool's 10 ms format.
The first line names the CPU and its vector units.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vocal_melody.bundle import DEFAULT_WEIGHTS
from vocal_melody.cli import argtypes
from vocal_melody.cli.common import OneLineParser, run_cli

ROOT = Path(__file__).resolve().parents[1]
SHARED_SONGS = ROOT.parent / "shared" / "data" / "songs"
SPEED_DATA = ROOT / "data" / "bench" / "speed"
RATE = 44100

MELODIA_SCRIPT = """
import sys
import numpy as np
import essentia.standard as es

audio = es.MonoLoader(filename=sys.argv[1], sampleRate=44100)()
audio = es.EqualLoudness(sampleRate=44100)(audio)
pitch, confidence = es.PredominantPitchMelodia(sampleRate=44100, hopSize=128)(audio)
times = np.arange(len(pitch)) * 128 / 44100
np.savetxt(sys.argv[2], np.stack([times, pitch], axis=1), fmt="%.4f")
"""


def cpu_description() -> str:
    """The CPU's model name and its matrix/vector units (AMX, AVX-512, AVX2), from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    units = [label for flag, label in (("amx_tile", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512f", "AVX-512"),
                                       ("avx2", "AVX2")) if flag in flags]
    return f"{name}, {os.cpu_count()} CPUs, {' / '.join(units) or 'no AVX2'}"


def make_input(minutes: int) -> Path:
    """An MP3 of ``minutes`` made of the shared songs (looped), or of a synthesized song."""
    path = SPEED_DATA / f"songs_{minutes}min.mp3"
    if path.exists():
        return path
    from vocal_melody.audio import load_audio

    SPEED_DATA.mkdir(parents=True, exist_ok=True)
    songs = sorted(p for p in SHARED_SONGS.glob("*") if p.suffix in (".ogg", ".mp3", ".wav")) \
        if SHARED_SONGS.exists() else []
    pieces = [load_audio(p, RATE) for p in songs]
    if not pieces:
        from vocal_melody.lab.synth import demo

        mix, _, rate = demo.demo_song()
        from vocal_melody.audio import to_mono_rate

        pieces = [to_mono_rate(mix, rate, RATE)]
    total = minutes * 60 * RATE
    audio = np.resize(np.concatenate(pieces), total).astype(np.float32)
    with tempfile.TemporaryDirectory() as work:
        wav = Path(work) / "in.wav"
        import soundfile

        soundfile.write(str(wav), np.stack([audio, audio], axis=1), RATE, subtype="PCM_16")
        temp = path.with_suffix(".tmp.mp3")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-b:a", "192k", str(temp)], check=True)
        os.replace(temp, path)
    return path


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process run to completion.

    The peak is the kernel's high-water mark of the process's resident memory (VmHWM, reset at exec,
    so unlike ``ru_maxrss`` it does not count the benchmark's own pages inherited by the fork),
    read every 20 ms while it runs.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while process.poll() is None:
        value = _peak_rss_mb(process.pid)
        peak = max(peak, value or 0.0)
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {process.stderr.read().decode()[-500:]}")
    return wall, peak


def measure(command: list[str], runs: int) -> tuple[float, float, list[float]]:
    timed(command)  # warm-up: OS caches, the OpenVINO model cache
    results = [timed(command) for _ in range(runs)]
    walls = [w for w, _ in results]
    return statistics.median(walls), max(r for _, r in results), walls


def model_windows_per_second(weights: Path, engine: str, batches: int = 10) -> tuple[float, str]:
    """Windows per second of the engine alone, and the engine ``engine`` resolved to (auto -> int8...)."""
    from vocal_melody.inference.extractor import MelodyExtractor

    extractor = MelodyExtractor(weights, engine=engine)
    windows = np.random.default_rng(0).standard_normal((64, 31, 513, 1)).astype(np.float32)
    extractor.engine(windows)
    started = time.perf_counter()
    for _ in range(batches):
        extractor.engine(windows)
    speed = 64 * batches / (time.perf_counter() - started)
    engine_used = extractor.engine.name
    if engine_used == "openvino":
        engine_used += f" {extractor.engine.precision}"
    return speed, engine_used


def default_weights() -> Path:
    if DEFAULT_WEIGHTS.exists():
        return DEFAULT_WEIGHTS
    # speed does not depend on weight values: a randomly initialised paper-size bundle
    path = SPEED_DATA / "random_full_model.npz"
    if not path.exists():
        from vocal_melody.model import save_random_bundle  # imports TensorFlow quietly

        SPEED_DATA.mkdir(parents=True, exist_ok=True)
        save_random_bundle(path, {"filters": [64, 128, 192, 256], "lstm_units": 256})
    return path


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--runs", type=argtypes.positive_int, default=3)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--skip-60", action="store_true", help="skip the 60-minute memory run")
    parser.add_argument("--peers", nargs="*", default=None, help="peers of bench/peers.py to time too "
                        "(default: the installed defaults; --peers with no name: none)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    weights = args.weights or default_weights()
    song = make_input(10)
    python = sys.executable
    with tempfile.TemporaryDirectory() as out:
        ours = [python, str(ROOT / "melodyExtraction_NS.py"), "-p", str(song), "-o", out, "-w", str(weights),
                "--engine", args.engine, "-q"]
        melodia = [python, "-c", MELODIA_SCRIPT, str(song), str(Path(out) / "melodia.txt")]
        rows = []
        our_wall, our_rss, our_walls = measure(ours, args.runs)
        mel_wall, mel_rss, mel_walls = measure(melodia, args.runs)
        rows.append(("ours (CLI, 10 min)", our_wall, our_rss, our_walls))
        rows.append(("Melodia (essentia, 10 min)", mel_wall, mel_rss, mel_walls))
        from accuracy import load_peers  # bench/accuracy.py, beside this script

        peers = load_peers()

        asked = [p for p in peers.DEFAULT_PEERS if peers.missing_package(p) is None] if args.peers is None \
            else args.peers
        for peer in asked:
            if peer not in peers.PEERS or peers.missing_package(peer):
                raise SystemExit(f"error: peer {peer}: unknown or not installed (bash install.sh --peers)")
            command = [python, str(ROOT / "bench" / "peers.py"), peer, str(song), str(Path(out) / "peer.txt")]
            wall, rss, walls = measure(command, args.runs)
            rows.append((f"{peer} (10 min)", wall, rss, walls))
        if not args.skip_60:
            long_song = make_input(60)
            long_command = ours[:3] + [str(long_song)] + ours[4:]
            wall60, rss60, walls60 = measure(long_command, 1)
            rows.append(("ours (CLI, 60 min)", wall60, rss60, walls60))
    speed, engine_used = model_windows_per_second(weights, args.engine)
    print(f"CPU: {cpu_description()}")
    print(f"input: {song.name} (600 s, MP3 44.1 kHz stereo); weights: {weights.name}; "
          f"engine: {args.engine} ({engine_used})")
    print("| command | wall s (median) | runs | real-time factor | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, wall, rss, walls in rows:
        seconds = 3600 if "60 min" in name else 600
        print(f"| {name} | {wall:.1f} | {', '.join(f'{w:.1f}' for w in walls)} | {seconds / wall:.0f}x | {rss:.0f} |")
    print(f"ours / Melodia wall-time ratio: {our_wall / mel_wall:.2f}")
    for name, wall, _, _ in rows[2:]:
        if "60 min" not in name:
            print(f"{name.split(' (')[0]} / Melodia wall-time ratio: {wall / mel_wall:.2f}")
    print(f"model alone: {speed:.0f} windows/s (batches of 64; a 10-minute song is 1,936 windows)")
    return 0


if __name__ == "__main__":
    run_cli(main)
