"""``augment.py`` / ``vocal-melody-augment``: apply one randAudioAugment chain to a file.

    python augment.py in.wav out.wav --seed 3            # prints the chain as JSON
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vocal_melody.audio import check_audio_file, decode_audio, to_mono_rate
from vocal_melody.cli import argtypes
from vocal_melody.cli.common import OneLineParser, program_name, run_cli
from vocal_melody.lab.rand_audio_augment import HIGHEST_EFFECT_HZ, describe, rand_audio_augment
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import check_output_file, write_sound_atomic


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = OneLineParser(prog=program_name("augment.py"), description="Apply one randAudioAugment chain to a file.")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--seed", type=argtypes.seed, default=0)
    parser.add_argument("--original-rate-quirk", action="store_true",
                        help="compute effects as if the audio were 44.1 kHz, as the original code did")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    import soundfile

    output = Path(args.output)
    formats = soundfile.available_formats()
    if output.suffix[1:].upper() not in formats:
        raise MelodyError(f"{output}: give the output a sound-file extension (.wav, .flac, .ogg...), "
                          "which sets its format")
    check_output_file(output, inputs=[args.input])
    source = Path(args.input)
    check_audio_file(source)
    samples, rate = decode_audio(source)
    mono = to_mono_rate(samples, rate, rate, name=str(source))  # checks: samples, finite, rate
    if rate <= 2 * HIGHEST_EFFECT_HZ and not args.original_rate_quirk:
        raise MelodyError(f"{source}: {rate} Hz is too low for these effects (they reach "
                          f"{HIGHEST_EFFECT_HZ:.0f} Hz); resample it to 8000 Hz or more first")
    try:
        augmented, chain = rand_audio_augment(mono, rate, np.random.default_rng(args.seed),
                                              args.original_rate_quirk)
    except MelodyError:
        raise
    except Exception as error:  # sox says little; name the file and its rate
        raise MelodyError(f"{source}: sox could not apply the effects at {rate} Hz "
                          f"({type(error).__name__}: {str(error).strip() or 'no message'})") from None
    write_sound_atomic(output, augmented, rate)
    print(describe(chain))
    return 0


def command() -> None:
    """The ``vocal-melody-augment`` console command."""
    run_cli(main)
