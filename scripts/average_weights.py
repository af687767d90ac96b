"""Average the weights of several students of one teacher into one bundle (a "model soup").

    python scripts/average_weights.py runs/ns3/iter1/best.npz runs/ns4/iter1/best.npz -o runs/soup.npz
    python scripts/tune_voicing.py runs/soup.npz --val data/synth_music/manifest.csv ...

The result runs as fast as one model. Its voicing rule is left out: choose it on validation data
with ``scripts/tune_voicing.py``, and keep the average only if validation prefers it to its members.
An existing output is never overwritten.
"""

from __future__ import annotations

import sys

from vocal_melody.cli.common import OneLineParser, run_cli
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import check_output_file


def main(argv=None) -> int:
    parser = OneLineParser(prog="average_weights.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", help="two or more weights bundles (.npz) of one starting point")
    parser.add_argument("-o", "--output", required=True, help="the averaged bundle to write (.npz)")
    parser.add_argument("--proportions", nargs="+", type=float,
                        help="one share per bundle (default: equal shares)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    from vocal_melody.lab.training.averaging import average_bundles

    output = check_output_file(args.output, args.bundles)
    if output.exists():
        raise MelodyError(f"{output} exists; choose a new file name (an existing bundle is never overwritten)")
    average_bundles(args.bundles, output, args.proportions)
    print(f"wrote {output} (the mean of {len(args.bundles)} bundles; tune its voicing with "
          "scripts/tune_voicing.py)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
