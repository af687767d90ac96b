"""Draw an audio file's spectrogram with f0 files (labels, estimates) overlaid, as a PNG.

    python scripts/plot_label.py audio/demo_song.wav audio/demo_song.f0.txt -o docs/demo_song.png
    python scripts/plot_label.py mix.wav label.txt results/pitch_mix.wav.txt --start 5 --end 15
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence


import numpy as np

from vocal_melody import features
from vocal_melody.cli import argtypes
from vocal_melody.cli.common import OneLineParser, run_cli
from vocal_melody.formats.plot import plot_melody
from vocal_melody.formats.readers import read_f0


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("audio")
    parser.add_argument("f0_files", nargs="*", help="label or estimate files to overlay")
    parser.add_argument("-o", "--output", required=True, help="PNG to write")
    parser.add_argument("--start", type=argtypes.number(0.0), default=0.0, help="first second shown")
    parser.add_argument("--end", type=argtypes.number(0.0, low_open=True), default=None, help="last second shown")
    parser.add_argument("--title", default=None)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    audio = features.load_audio(args.audio)
    spec = features.spectrogram(audio)
    first = int(args.start / features.FRAME_SECONDS)
    last = spec.shape[0] if args.end is None else int(args.end / features.FRAME_SECONDS)
    tracks = {}
    for f0_file in args.f0_files:
        times, f0 = read_f0(f0_file)
        inside = (times >= args.start) & (times <= (args.end or np.inf))
        tracks[Path(f0_file).name] = (times[inside] - args.start, f0[inside])
    plot_melody(spec[first:last], features.FRAME_SECONDS, features.SAMPLE_RATE, tracks, args.output,
                title=args.title if args.title is not None else Path(args.audio).name)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
