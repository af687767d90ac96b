"""Score melody estimates against references with mir_eval, under the paper's script name
(:mod:`vocal_melody.cli.evaluate`).

    python evaluate.py REF_FOLDER EST_FOLDER --csv scores.csv
"""

from vocal_melody.cli.common import run_cli
from vocal_melody.cli.evaluate import main

if __name__ == "__main__":
    run_cli(main)
