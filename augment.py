"""randAudioAugment on one file, under the paper's script name (:mod:`vocal_melody.lab.cli.augment`).

    python augment.py in.wav out.wav --seed 3            # prints the chain as JSON
"""

from vocal_melody.lab.cli.augment import main
from vocal_melody.cli.common import run_cli

if __name__ == "__main__":
    run_cli(main)
