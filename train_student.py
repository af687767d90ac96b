"""Self-training from a teacher (BTS, NTS, Noisy Student), under the paper's script name
(:mod:`vocal_melody.lab.cli.train_student`).

    python train_student.py --teacher runs/teacher/best.npz --setup ns --labeled data/synth/manifest.csv \\
        --unlabeled ../shared/data/songs --run-dir runs/ns --max-minutes 120
"""

from vocal_melody.cli.common import run_cli
from vocal_melody.lab.cli.train_student import main

if __name__ == "__main__":
    run_cli(main)
