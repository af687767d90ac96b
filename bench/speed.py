"""Speed and memory benchmark: our CLI, per model capacity and engine, against Essentia's Melodia on the same
audio, in one run.

    python bench/speed.py                                 # the shipped capacities, engine auto, 3 runs each
    python bench/speed.py --models full tiny --engines int8 openvino tf --runs 5
    python bench/speed.py --weights runs/x/best.npz       # one bundle instead of the shipped ones

The inputs are MP3s (192 kbit/s, 44.1 kHz stereo) built by concatenating the songs of
../shared/data/songs (or, without them, synthesized songs) and cached in data/bench/speed/.
Every figure is measured on a separate process, from start to exit (the output file written):
wall time (median of --runs after one warm-up), peak RSS (the kernel's VmHWM), our real-time factor,
and the model's windows per second alone (engine only, batches of 64); each capacity and engine also
extracts a 60-minute file once, for its peak memory (``--skip-60``: not). A capacity this installation does
not ship is timed with random weights of its widths (speed does not depend on the weights' values; such a
bundle has no int8 model). ``--peers`` (default: the installed ones of ``bench/peers.py``'s defaults) times
each peer the same way, as a process that writes the tool's 10 ms format.
The first line names the CPU and its vector units. ``--max-isa AVX2`` runs our engines on the CPU's AVX2
code paths only (oneDNN's ``ONEDNN_MAX_CPU_ISA``, which OpenVINO's kernels obey): an estimate of an AVX2-only
CPU of the same core, not a measurement of one; Melodia and the peers run as they are.
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

from vocal_melody.bundle import MODELS, model_weights, shipped_models
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


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process run to completion.

    The peak is the kernel's high-water mark of the process's resident memory (VmHWM, reset at exec,
    so unlike ``ru_maxrss`` it does not count the benchmark's own pages inherited by the fork),
    read every 20 ms while it runs.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = 0.0
    while process.poll() is None:
        value = _peak_rss_mb(process.pid)
        peak = max(peak, value or 0.0)
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {process.stderr.read().decode()[-500:]}")
    return wall, peak


def measure(command: list[str], runs: int, warm_up: bool = True,
            env: dict[str, str] | None = None) -> tuple[float, float, list[float]]:
    if warm_up:
        timed(command, env)  # OS caches, the OpenVINO model cache
    results = [timed(command, env) for _ in range(runs)]
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


def capacity_weights(model: str) -> tuple[Path, str]:
    """The shipped bundle of a capacity, or a random bundle of its widths; and which of the two it is."""
    if model in shipped_models():
        return model_weights(model), "shipped"
    path = SPEED_DATA / f"random_{model}_model.npz"
    if not path.exists():
        from vocal_melody.model import CAPACITIES, save_random_bundle  # imports TensorFlow quietly

        SPEED_DATA.mkdir(parents=True, exist_ok=True)
        filters, lstm_units = CAPACITIES[model]
        save_random_bundle(path, {"filters": list(filters), "lstm_units": lstm_units})
    return path, "random weights"


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=None,
                        help="capacities to time (default: the shipped ones)")
    parser.add_argument("--weights", type=Path, default=None, help="time this bundle instead of --models")
    parser.add_argument("--engines", nargs="+", choices=["auto", "int8", "openvino", "tf"], default=["auto"])
    parser.add_argument("--runs", type=argtypes.positive_int, default=3)
    parser.add_argument("--skip-60", action="store_true", help="skip the 60-minute memory runs")
    parser.add_argument("--peers", nargs="*", default=None, help="peers of bench/peers.py to time too "
                        "(default: the installed defaults; --peers with no name: none)")
    parser.add_argument("--max-isa", choices=["AVX2", "AVX512_CORE", "AVX512_CORE_VNNI"], default=None,
                        help="cap our engines' instruction set (oneDNN's ONEDNN_MAX_CPU_ISA); default: the CPU's")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    for variable in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        os.environ.pop(variable, None)
    uncapped = dict(os.environ)  # Melodia and the peers (Spleeter's TensorFlow uses oneDNN too)
    if args.max_isa:
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.max_isa  # this process's engine and our extraction processes
    if args.weights:
        candidates = [(args.weights.stem, args.weights, "given")]
    else:
        candidates = [(model, *capacity_weights(model)) for model in args.models or shipped_models()]
    song = make_input(10)
    long_song = None if args.skip_60 else make_input(60)
    python = sys.executable
    rows, speeds = [], []
    with tempfile.TemporaryDirectory() as out:
        melodia = [python, "-c", MELODIA_SCRIPT, str(song), str(Path(out) / "melodia.txt")]
        mel_wall, mel_rss, mel_walls = measure(melodia, args.runs, env=uncapped)
        rows.append(("Melodia (essentia)", "10 min", mel_wall, mel_rss, mel_walls))
        for model, weights, origin in candidates:
            for engine in args.engines:
                ours = [python, str(ROOT / "melodyExtraction_NS.py"), "-p", str(song), "-o", out, "-w", str(weights),
                        "--engine", engine, "-q"]
                speed, engine_used = model_windows_per_second(weights, engine)
                name = f"ours, {model} ({origin}), {engine_used}"
                speeds.append((name, speed))
                wall, rss, walls = measure(ours, args.runs)
                rows.append((name, "10 min", wall, rss, walls))
                if long_song is not None:
                    long_command = ours[:3] + [str(long_song)] + ours[4:]
                    rows.append((name, "60 min", *measure(long_command, 1, warm_up=False)))  # warmed by the 10 min
        from accuracy import load_peers  # bench/accuracy.py, beside this script

        peers = load_peers()
        asked = [p for p in peers.DEFAULT_PEERS if peers.missing_package(p) is None] if args.peers is None \
            else args.peers
        for peer in asked:
            if peer not in peers.PEERS or peers.missing_package(peer):
                raise SystemExit(f"error: peer {peer}: unknown or not installed (bash install.sh --peers)")
            command = [python, str(ROOT / "bench" / "peers.py"), peer, str(song), str(Path(out) / "peer.txt")]
            wall, rss, walls = measure(command, args.runs, env=uncapped)
            rows.append((peer, "10 min", wall, rss, walls))
    print(f"CPU: {cpu_description()}" + (f"; our engines capped at {args.max_isa} (ONEDNN_MAX_CPU_ISA)"
                                          if args.max_isa else ""))
    print(f"input: {song.name} (600 s, MP3 44.1 kHz stereo)" + ("" if long_song is None else f" and {long_song.name}"))
    print("| command | input | wall s (median) | runs | real-time factor | peak RSS MB | / Melodia |")
    print("|---|---|---|---|---|---|---|")
    for name, length, wall, rss, walls in rows:
        seconds = 3600 if length == "60 min" else 600
        ratio = f"{wall / mel_wall:.2f}" if length == "10 min" else ""
        print(f"| {name} | {length} | {wall:.1f} | {', '.join(f'{w:.1f}' for w in walls)} | {seconds / wall:.0f}x "
              f"| {rss:.0f} | {ratio} |")
    for name, speed in speeds:
        print(f"model alone, {name}: {speed:.0f} windows/s (batches of 64; a 10-minute song is 1,936 windows)")
    return 0


if __name__ == "__main__":
    run_cli(main)
