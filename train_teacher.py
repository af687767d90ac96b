"""Supervised training of the teacher CRNN, under the paper's script name (:mod:`vocal_melody.lab.cli.train_teacher`).

    python train_teacher.py --train data/synth/manifest.csv --run-dir runs/teacher --max-minutes 120
"""

from vocal_melody.cli.common import run_cli
from vocal_melody.lab.cli.train_teacher import main

if __name__ == "__main__":
    run_cli(main)
