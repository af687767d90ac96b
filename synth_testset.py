"""Labeled vocal-melody data by synthesis (anasyn, compose, demo, fetch-music), under the paper's script name
(:mod:`vocal_melody.lab.cli.synth`).

    python synth_testset.py compose --minutes 60 -o data/synth
"""

from vocal_melody.cli.common import run_cli
from vocal_melody.lab.cli.synth import main

if __name__ == "__main__":
    run_cli(main)
