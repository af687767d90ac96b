"""``vocal-melody`` / ``melodyExtraction_NS.py``: extract the vocal melody (f0 every 10 ms) of songs.

    vocal-melody -p song.mp3 -o results/
    python melodyExtraction_NS.py -p music/ "more/*.flac" --median-filter 5

writes ``results/pitch_song.mp3.txt``: one line per 10 ms frame, ``time f0`` (``"%.2f %.4f"``, 0 Hz = no voice).
"""

from __future__ import annotations

import argparse
from typing import Sequence

from vocal_melody.batch import FileOptions
from vocal_melody.bundle import MODELS
from vocal_melody.cli.argtypes import batch_size, gpu_indices, odd_kernel, voicing_rule
from vocal_melody.cli.common import OneLineParser, program_name, run_cli
from vocal_melody.extraction import ExtractionRequest, extract_files
from vocal_melody.formats.writers import FORMATS
from vocal_melody.inference.engines import ENGINES
from vocal_melody.inference.extractor import DEFAULT_BATCH_SIZE


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (original options first)."""
    parser = OneLineParser(
        prog=program_name("melodyExtraction_NS.py"),
        description="Extract the vocal melody (f0 every 10 ms) of songs.")
    parser.add_argument("-p", "--filepath", nargs="+", required=True, metavar="PATH",
                        help="audio files, folders or glob patterns")
    parser.add_argument("-o", "--output_dir", default="./results/",
                        help="folder for pitch_NAME.EXT.txt files (default: ./results/)")
    parser.add_argument("-gpu", "--gpu_index", type=gpu_indices, default=None,
                        help="GPU index (e.g. 0 or 0,1); CPU when omitted")
    parser.add_argument("-w", "--weights", default=None,
                        help="weights bundle (.npz; default: the shipped bundle of --model)")
    parser.add_argument("--model", choices=list(MODELS), default=None,
                        help="shipped model capacity: full (the paper's CRNN, default) or a smaller, faster "
                             "student distilled from it, where this version ships one")
    parser.add_argument("--median-filter", type=odd_kernel, default=0, metavar="N",
                        help="median-filter the f0 track with an odd kernel N (authors' evaluation: 5)")
    parser.add_argument("--subbin", action="store_true",
                        help="sub-bin f0: softmax-weighted mean pitch around the most probable class")
    parser.add_argument("--unvoiced-pitch", action="store_true",
                        help="write the most probable pitch of unvoiced frames as negative f0 (MIREX), so raw "
                             "pitch accuracy is measured apart from voicing")
    parser.add_argument("--voicing-threshold", type=voicing_rule, default="tuned", metavar="P",
                        help="voiced when 1 - p(no voice) >= P; 'argmax': the paper's rule; 'tuned' (default): "
                             "the threshold chosen on validation data in training, else argmax")
    parser.add_argument("--format", choices=sorted(FORMATS), default="txt",
                        help="txt (original), csv (time,frequency,confidence), json, "
                             "sv (Sonic Visualiser / Tony: time,frequency of voiced frames)")
    parser.add_argument("--plot", action="store_true",
                        help="also write pitch_NAME.EXT.png: spectrogram with the melody on top")
    parser.add_argument("--engine", choices=list(ENGINES), default="auto",
                        help="auto: the shipped int8 model when it matches the weights and the CPU has int8 "
                             "units, else OpenVINO (bf16 where supported), else TensorFlow; "
                             "tf: the float32 reference")
    parser.add_argument("--batch-size", type=batch_size, default=DEFAULT_BATCH_SIZE,
                        help="windows of 31 frames per model call")
    parser.add_argument("-r", "--recursive", action="store_true", help="search folders recursively")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip inputs whose output file exists (resume an interrupted batch)")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run the batch on a Ray cluster (ADDRESS, e.g. 10.0.0.1:6379 or auto; alone: a "
                             "local one on this machine's cores): one model per worker CPU, outputs written "
                             "by the workers, so -o must be a folder every node sees (pip install ray)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's messages")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def request_from(args: argparse.Namespace) -> ExtractionRequest:
    """The parsed command line as an extraction request."""
    options = FileOptions(median_filter=args.median_filter, subbin=args.subbin, unvoiced_pitch=args.unvoiced_pitch,
                          voicing_threshold=args.voicing_threshold, format=args.format,
                          progress=not args.quiet and args.ray is None)
    return ExtractionRequest(inputs=list(args.filepath), output_dir=args.output_dir, weights=args.weights,
                             model=args.model,
                             engine=args.engine, gpu_index=args.gpu_index, batch_size=args.batch_size,
                             file_options=options, plot=args.plot, recursive=args.recursive,
                             skip_existing=args.skip_existing, ray=args.ray, quiet=args.quiet, verbose=args.verbose,
                             debug=args.debug)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 all written, 1 any failure)."""
    return extract_files(request_from(build_parser().parse_args(argv)))


def command() -> None:
    """The ``vocal-melody`` console command."""
    run_cli(main)
