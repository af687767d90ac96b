"""Labeled vocal-melody data by synthesis, with exact f0 labels.

Modes:

- ``anasyn`` (the paper's method): a vocal stem is analysed with WORLD
  (gated harvest f0, envelope, aperiodicity), resynthesized with exactly
  that f0 and remixed with its accompaniment.
- ``compose``: a training corpus (train/val/test splits, manifest.csv) of
  new melodies sung with real voices, and of real singing re-sung with
  transposed f0, over real and soundfont accompaniment.
- ``demo``: the project's demo song (``audio/demo_song.wav`` and its label),
  made only from material the project may redistribute: an espeak-ng voice
  shaped by WORLD onto a public-domain melody, with soundfont accompaniment.

Every item is written as a mix, and a label at 10 ms (``time f0`` lines,
``"%.2f %.4f"``, 0 = unvoiced) covering exactly the frames the extractor
produces for the mix.

    python synth_testset.py compose --minutes 60 -o data/synth       # or: vocal-melody-synth compose ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from vocal_melody.cache import DEFAULT_CACHE_ROOT
from vocal_melody.cli import argtypes
from vocal_melody.cli.common import OneLineParser, program_name, run_cli
from vocal_melody.lab.corpora import music_pool
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import ensure_output_dir, write_text_atomic
from vocal_melody.formats.writers import format_label
from vocal_melody.lab.synth.anasyn import anasyn, read_streams
from vocal_melody.lab.synth.compose import (INSTRUMENTAL_SHARE, SPLITS,
                                        SourceCache,
                                        accompaniment_kind, check_corpus_settings, discover_sources, make_items,
                                        plan_tasks, vibrato_settings, write_manifest)
from vocal_melody.lab.synth.contours import VIBRATO_DEPTH_CENTS
from vocal_melody.lab.synth.demo import demo_song
from vocal_melody.lab.synth.mixing import SYNTH_RATE, write_audio
from vocal_melody.lab.synth.originals import original_mixes
from vocal_melody.lab.synth.real_corpora import mir1k_corpus, ssvd_mixes
from vocal_melody.lab.corpora.ssvd import NOTE_TOLERANCE_CENTS
from vocal_melody.audio import load_audio

SHARED_DATA = Path(os.environ.get("VOCAL_MELODY_SHARED_DATA", "../shared/data"))
"""The shared recordings: ``$VOCAL_MELODY_SHARED_DATA``, else a checkout's neighbour ``../shared/data`` seen from the
working directory (run the commands from the checkout)."""
DEFAULT_VOICE_DIRS = (SHARED_DATA / "voice", SHARED_DATA / "voice_research")
DEFAULT_ACCOMPANIMENT_DIRS = (SHARED_DATA / "accompaniment",)
DEFAULT_MIR1K = SHARED_DATA / "labeled_research" / "mir1k"
DEFAULT_SSVD = SHARED_DATA / "voice_research" / "ssvd_v2"


def _resolved(folders) -> list[Path]:
    """Default folders as absolute paths, as corpus settings record them."""
    return [Path(folder).resolve() for folder in folders]


def run_demo(args: argparse.Namespace) -> int:
    """``demo``: the demo song and its label."""
    output_dir = ensure_output_dir(args.output_dir)
    mix, label, rate = demo_song(seed=args.seed)
    write_audio(output_dir / "demo_song.wav", mix, rate)
    write_text_atomic(output_dir / "demo_song.f0.txt", format_label(label))
    voiced = label > 0
    print(f"wrote {output_dir / 'demo_song.wav'} ({len(mix) / rate:.1f} s, "
          f"{voiced.mean():.0%} voiced, f0 {label[voiced].min():.0f}-{label[voiced].max():.0f} Hz) "
          f"and {output_dir / 'demo_song.f0.txt'}", file=sys.stderr)
    return 0


def run_anasyn(args: argparse.Namespace) -> int:
    """``anasyn``: the paper's analysis-synthesis of one vocal stem, remixed."""
    vocal_path = Path(args.vocal)
    name = args.name or vocal_path.name.split(".")[0]
    if Path(name).name != name or name in ("", ".", ".."):
        raise MelodyError(f"--name {name!r}: a plain file-name prefix, without folders, is needed")
    rate = args.sample_rate
    vocal = load_audio(vocal_path, rate, args.vocal_stream)
    accompaniment = None
    if args.accompaniment or args.accompaniment_streams:
        accompaniment_path = Path(args.accompaniment or args.vocal)
        streams = [int(s) for s in (args.accompaniment_streams or "0").split(",")]
        accompaniment = read_streams(accompaniment_path, streams, rate)
        if not args.loop_accompaniment:
            difference = abs(len(accompaniment) - len(vocal)) / rate
            if difference > 0.1:
                raise MelodyError(f"vocal ({len(vocal) / rate:.2f} s) and accompaniment "
                                  f"({len(accompaniment) / rate:.2f} s) differ in length; "
                                  "pass --loop-accompaniment to loop or cut the accompaniment")
        accompaniment = np.resize(accompaniment, len(vocal))
    output_dir = ensure_output_dir(args.output_dir)
    mix, resynth, label = anasyn(vocal, accompaniment, rate, args.ratio_db, args.transpose, str(vocal_path))
    write_audio(output_dir / f"{name}_mix.wav", mix, rate)
    write_audio(output_dir / f"{name}_vocal.wav", resynth, rate)
    write_text_atomic(output_dir / f"{name}.f0.txt", format_label(label))
    print(f"wrote {name}_mix.wav, {name}_vocal.wav and {name}.f0.txt to {output_dir} "
          f"({len(mix) / rate:.1f} s, {np.mean(label > 0):.0%} voiced)", file=sys.stderr)
    return 0


def _add_vibrato_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--vibrato-share`` and ``--vibrato-cents`` (compose's items, originals' mixes)."""
    parser.add_argument("--vibrato-share", type=argtypes.share, default=0.0,
                        help=f"with --music: share of the {what} whose music gets a sung-like vibrato (on the whole "
                        "music, or on a soundfont lead line added over it); the label stays the voice's (unvoiced "
                        "on instrumental items): a vibrato alone is not a voice (default 0)")
    parser.add_argument("--vibrato-cents", nargs=2, type=argtypes.number(1.0, 200.0), metavar=("LOW", "HIGH"),
                        default=list(VIBRATO_DEPTH_CENTS), help="range of that vibrato's peak deviation in cents "

                        f"(default {VIBRATO_DEPTH_CENTS[0]:g} {VIBRATO_DEPTH_CENTS[1]:g}, the synthesized voices'; "
                        "string players' is narrower)")


def _check_vibrato_options(args: argparse.Namespace) -> None:
    """A vibrato needs pool music and a range whose low end is not above its high end."""
    if args.vibrato_share and not args.music:
        raise MelodyError("--vibrato-share needs --music (the pool music it gives a vibrato)")
    if args.vibrato_cents[0] > args.vibrato_cents[1]:
        raise MelodyError(f"--vibrato-cents: the low end {args.vibrato_cents[0]:g} is above the high end "
                          f"{args.vibrato_cents[1]:g}")


def run_compose(args: argparse.Namespace) -> int:
    """``compose``: a labeled training corpus (resumable: complete items are kept)."""
    if args.instrumental_leads and not args.music:
        raise MelodyError("--instrumental-leads needs --music (the pool whose lead-instrument stems it cuts)")
    _check_vibrato_options(args)
    voice_dirs = _voice_dirs(args)
    accompaniment_dirs = [Path(d) for d in (args.accompaniment or _resolved(DEFAULT_ACCOMPANIMENT_DIRS))]
    sources = discover_sources(voice_dirs, accompaniment_dirs)
    for split, group in (sources.held_out or {}).items():
        if not args.quiet:
            print(f"note: no voice of the {split} split among --voices: {group} is held out for it", file=sys.stderr)
    sources.plain_voice_share = args.plain_voice_share
    if args.music:
        sources.pool = music_pool.load_pool(args.music)
        sources.instrumental_share = args.instrumental_share
        sources.instrumental_leads = args.instrumental_leads
        sources.vibrato_share = args.vibrato_share
        sources.vibrato_cents = tuple(args.vibrato_cents)
        if sources.pool.unscreened and not args.quiet:
            print(f"warning: {sources.pool.unscreened} tracks of {args.music} have no screening decision "
                  f"and are not used", file=sys.stderr)
    settings = {"seed": args.seed, "sample_rate": args.sample_rate, "voices": sorted(map(str, voice_dirs)),
                "accompaniment": sorted(map(str, args.accompaniment or _resolved(DEFAULT_ACCOMPANIMENT_DIRS))),
                "music": str(Path(args.music).resolve()) if args.music else None,
                "instrumental_share": args.instrumental_share if args.music else None}
    if args.instrumental_leads:  # recorded only when set: corpora made before the option stay resumable
        settings["instrumental_leads"] = True
    settings.update(vibrato_settings(sources))
    check_corpus_settings(Path(args.output_dir), settings)
    output_dir = ensure_output_dir(args.output_dir)
    for split in SPLITS:
        ensure_output_dir(output_dir / split)
    write_text_atomic(output_dir / "compose.json", json.dumps(settings, indent=1) + "\n")
    tasks = plan_tasks(args.minutes, args.seed, output_dir, args.splits)
    rows = make_items(sources, tasks, Path(args.cache_dir), args.sample_rate, args.workers, not args.quiet)
    write_manifest(output_dir / "manifest.csv", rows)
    if not args.quiet:
        _print_corpus_summary(output_dir, rows)
    return 0


def _print_corpus_summary(output_dir: Path, rows: list[dict]) -> None:
    minutes = {split: sum(r["seconds"] for r in rows if r["split"] == split) / 60 for split in SPLITS}
    print(f"wrote {len(rows)} items to {output_dir}: " +
          ", ".join(f"{split} {m:.1f} min" for split, m in minutes.items()) +
          f"; manifest {output_dir / 'manifest.csv'}", file=sys.stderr)
    by_kind: dict[str, float] = {}
    for row in rows:
        kind = accompaniment_kind(row)
        by_kind[kind] = by_kind.get(kind, 0.0) + row["seconds"] / 60
    print("minutes by accompaniment: " + ", ".join(f"{kind} {m:.1f}" for kind, m in sorted(by_kind.items())),
          file=sys.stderr)


def _voice_dirs(args: argparse.Namespace) -> list[Path]:
    """--voices (default: the shared voice folders), without the research-only ones under --no-research."""
    voice_dirs = [Path(d) for d in (args.voices or _resolved(DEFAULT_VOICE_DIRS))]
    return [d for d in voice_dirs if "research" not in d.name] if args.no_research else voice_dirs


def run_originals(args: argparse.Namespace) -> int:
    """``originals``: real singing over real music, unlabeled (Noisy Student input) or with analysis labels."""
    _check_vibrato_options(args)
    voice_dirs = _voice_dirs(args)
    sources = discover_sources(voice_dirs, [])
    sources.vibrato_share, sources.vibrato_cents = args.vibrato_share, tuple(args.vibrato_cents)
    pool = music_pool.load_pool(args.music)
    output_dir = Path(args.output_dir)
    voice_cache = SourceCache(Path(args.cache_dir), args.sample_rate) if args.labels else None
    rows = original_mixes(sources, pool, output_dir, args.seed, args.mixes_per_voice, args.sample_rate,
                          progress=not args.quiet, split=args.split, voice_cache=voice_cache)
    if not args.quiet:
        minutes = sum(r["seconds"] for r in rows) / 60
        kind = "labeled" if args.labels else "unlabeled"
        print(f"wrote {len(rows)} {kind} mixes ({minutes:.1f} min) of {len({r['voice'] for r in rows})} "
              f"{args.split}-split voices to {output_dir}; manifest {output_dir / 'manifest.csv'}", file=sys.stderr)
    return 0


def run_mir1k(args: argparse.Namespace) -> int:
    """``mir1k``: MIR-1K clips mixed at the release's ratio or ``--ratio-db``, split by singer, with labels."""
    rows = mir1k_corpus(args.source, args.output_dir, args.ratio_db, tuple(args.splits or ()), not args.quiet)
    _print_real_summary(args.output_dir, rows, "MIR-1K clips", "singer")
    return 0


def run_ssvd(args: argparse.Namespace) -> int:
    """``ssvd``: SSVD voices over their split's pool music, labeled by the note-gated WORLD analysis."""
    pool = music_pool.load_pool(args.music)
    rows = ssvd_mixes(args.source, pool, args.output_dir, args.seed, args.cache_dir, args.sample_rate,
                      tuple(args.splits or ()), args.mixes_per_recording, args.tolerance_cents, args.workers,
                      not args.quiet)
    _print_real_summary(args.output_dir, rows, "SSVD mixes", "voice")
    return 0


def _print_real_summary(output_dir: str, rows: list[dict], what: str, who: str) -> None:
    minutes: dict[str, float] = {}
    people: dict[str, set] = {}
    for row in rows:
        minutes[row["split"]] = minutes.get(row["split"], 0.0) + float(row["seconds"]) / 60
        people.setdefault(row["split"], set()).add(row[who])
    print(f"wrote {len(rows)} {what} to {output_dir} (manifest.csv): " + ", ".join(
        f"{split} {m:.1f} min ({len(people[split])} {who}s)" for split, m in sorted(minutes.items())),
        file=sys.stderr)


def run_fetch_music(args: argparse.Namespace) -> int:
    """``fetch-music``: the Debian music packages, extracted, with their inventory."""
    rows = music_pool.fetch_music(args.output_dir, args.packages, args.deb, progress=not args.quiet)
    if not args.quiet:
        minutes: dict[str, float] = {}
        for row in rows:
            minutes[row["split"]] = minutes.get(row["split"], 0.0) + float(row["minutes"])
        print(f"inventory {Path(args.output_dir) / 'inventory.csv'}: {len(rows)} tracks, "
              + ", ".join(f"{split} {m:.1f} min" for split, m in sorted(minutes.items())), file=sys.stderr)
    return 0


def _add_common_options(parser: argparse.ArgumentParser, output_dir: str, quiet: bool = True,
                        synthesis: bool = False) -> None:
    """The options every mode shares: its output folder, ``-q`` and a hidden ``--debug``; with ``synthesis`` the
    output rate and the WORLD-analysis cache too."""
    if synthesis:
        parser.add_argument("--sample-rate", type=argtypes.synth_rate, default=SYNTH_RATE)
        parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_ROOT), help="cache folder (WORLD analyses)")
    parser.add_argument("-o", "--output-dir", default=output_dir, help=f"folder (default: {output_dir}/)")
    if quiet:
        parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(prog=program_name("synth_testset.py"), description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    modes = parser.add_subparsers(dest="mode", required=True)

    demo = modes.add_parser("demo", help="make the demo song and its label")
    demo.add_argument("--seed", type=argtypes.seed, default=0)
    _add_common_options(demo, "audio", quiet=False)
    demo.set_defaults(run=run_demo)

    ana = modes.add_parser("anasyn", help="analysis-synthesis of a vocal stem, remixed (the paper's test sets)")
    ana.add_argument("--vocal", required=True, help="vocal stem (or a multitrack file with --vocal-stream)")
    ana.add_argument("--vocal-stream", type=argtypes.integer(0, 64), default=0,
                     help="audio stream of the vocal (stem MP4: 4)")
    ana.add_argument("--accompaniment", help="accompaniment file (default: the vocal's file, other streams)")
    ana.add_argument("--accompaniment-streams",
                     help="comma-separated streams summed as accompaniment (stem MP4: 1,2,3)")
    ana.add_argument("--loop-accompaniment", action="store_true",
                     help="loop or cut the accompaniment to the vocal's length")
    ana.add_argument("--ratio-db", type=argtypes.number(-60.0, 60.0), default=None,
                     help="vocal-to-accompaniment ratio in dB (default: the original levels)")
    ana.add_argument("--transpose", type=argtypes.number(-24.0, 24.0), default=0.0,
                     help="transpose the voice by semitones")
    ana.add_argument("--sample-rate", type=argtypes.synth_rate, default=22050)
    ana.add_argument("--name", help="output name prefix (default: the vocal file's name)")
    _add_common_options(ana, "data/anasyn", quiet=False)
    ana.set_defaults(run=run_anasyn)

    comp = modes.add_parser("compose", help="a labeled training corpus: new melodies sung with real voices")
    comp.add_argument("--minutes", type=argtypes.number(0.0, 10000.0, low_open=True), default=10.0,
                      help="minutes of audio in all splits")
    comp.add_argument("--seed", type=argtypes.seed, default=0)
    comp.add_argument("--workers", type=argtypes.integer(1, 256), default=max(1, (os.cpu_count() or 1)))
    comp.add_argument("--voices", nargs="+", help="voice folders (default: ../shared/data/voice and voice_research)")
    comp.add_argument("--no-research", action="store_true", help="leave out research-only voice folders")
    comp.add_argument("--accompaniment", nargs="+",
                      help="accompaniment folders (default: ../shared/data/accompaniment)")
    comp.add_argument("--music", help="a fetched music pool (fetch-music's folder, e.g. data/music): its screened "
                      "instrumental tracks become accompaniment, lead-guitar distractors and whole unvoiced items, "
                      "each package in one split")
    comp.add_argument("--instrumental-share", type=argtypes.share, default=INSTRUMENTAL_SHARE,
                      help=f"with --music: share of items that are instrumental music alone, unvoiced on every "
                      f"frame (default {INSTRUMENTAL_SHARE})")
    comp.add_argument("--instrumental-leads", action="store_true",
                      help="with --music: cut the instrumental items from the lead-instrument stems only (the "
                      "pool's lead guitars; a split without any keeps all its instrumental tracks)")
    _add_vibrato_options(comp, "items")
    comp.add_argument("--plain-voice-share", type=argtypes.share, default=0.0,
                      help="share of the sung items whose voice has no vibrato: new melodies sung straight, real "
                      "contours with their vibrato smoothed away (kind sung-plain, resung-plain; the same items "
                      "otherwise): a voice without a vibrato is still a voice (default 0)")
    comp.add_argument("--splits", nargs="+", choices=SPLITS, help="make only these splits' items "
                      "(the plan, and so every item, stays that of the whole corpus)")
    _add_common_options(comp, "data/synth", synthesis=True)
    comp.set_defaults(run=run_compose)

    orig = modes.add_parser("originals", help="real singing over real music: a split's original voice recordings "
                            "over that split's pool music (unlabeled Noisy Student input, or --labels)")
    orig.add_argument("--music", required=True, help="a fetched music pool (fetch-music's folder)")
    orig.add_argument("--split", choices=SPLITS, default="train", help="whose voices and pool music (default: train)")
    orig.add_argument("--labels", action="store_true",
                      help="also write each mix's WORLD analysis label (gated harvest f0 of its voice) and a labeled "
                           "manifest: e.g. --split val --labels, a validation set of real singing")
    _add_vibrato_options(orig, "mixes")
    orig.add_argument("--mixes-per-voice", type=argtypes.integer(1, 100), default=2)
    orig.add_argument("--seed", type=argtypes.seed, default=0)
    orig.add_argument("--voices", nargs="+", help="voice folders (default: ../shared/data/voice and voice_research)")
    orig.add_argument("--no-research", action="store_true", help="leave out research-only voice folders")
    _add_common_options(orig, "data/unlabeled_originals", synthesis=True)
    orig.set_defaults(run=run_originals)

    m1k = modes.add_parser("mir1k", help="MIR-1K (real karaoke singing, hand-checked pitch) as a labeled corpus, "
                           "split by singer")
    m1k.add_argument("--source", default=str(DEFAULT_MIR1K), help="a MIR-1K folder: the release's Wavfile/ or "
                     f"Voice/ + Accompaniment/, with PitchLabel/ (default {DEFAULT_MIR1K})")
    m1k.add_argument("--ratio-db", type=argtypes.number(-60.0, 60.0), default=None,
                     help="voice-to-accompaniment ratio in dB over the clip (default: the release's mix, their sum)")
    m1k.add_argument("--splits", nargs="+", choices=SPLITS, help="only these splits' singers")
    _add_common_options(m1k, "data/mir1k")
    m1k.set_defaults(run=run_mir1k)

    sv = modes.add_parser("ssvd", help="SSVD sight-singing voices over their split's pool music, labeled by the "
                          "note-gated WORLD analysis of the voice")
    sv.add_argument("--source", default=str(DEFAULT_SSVD), help=f"the SSVD folder (default {DEFAULT_SSVD})")
    sv.add_argument("--music", required=True, help="a fetched music pool (fetch-music's folder)")
    sv.add_argument("--splits", nargs="+", choices=SPLITS, help="only these splits (train_valid/ trains; test/ is "
                    "halved into val and test)")
    sv.add_argument("--mixes-per-recording", type=argtypes.integer(1, 100), default=1)
    sv.add_argument("--tolerance-cents", type=argtypes.number(1.0, 1200.0), default=NOTE_TOLERANCE_CENTS,
                    help="an analysed frame is kept within this of its note's pitch "
                    f"(default {NOTE_TOLERANCE_CENTS:g})")
    sv.add_argument("--seed", type=argtypes.seed, default=0)
    sv.add_argument("--workers", type=argtypes.integer(1, 256), default=max(1, (os.cpu_count() or 1)))
    _add_common_options(sv, "data/ssvd", synthesis=True)
    sv.set_defaults(run=run_ssvd)

    fetch = modes.add_parser("fetch-music", help="download and extract the real instrumental music pool "
                             "(Debian game-music packages) and write its inventory")
    fetch.add_argument("--packages", nargs="+", help=f"only these packages (default: all {len(music_pool.PACKAGES)})")
    fetch.add_argument("--deb", nargs="+", default=[], help="use these local .deb files instead of downloading")
    _add_common_options(fetch, "data/music")
    fetch.set_defaults(run=run_fetch_music)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


def command() -> None:
    """The ``vocal-melody-synth`` console command."""
    run_cli(main)
