"""Vocal melody extraction with the teacher-student CRNN (Kum et al., ISMIR 2020), under the paper's script name.

    python melodyExtraction_NS.py -p song.mp3 -o results/       # installed: vocal-melody -p song.mp3

The code is the package ``vocal_melody`` (this command: :mod:`vocal_melody.cli.extract`).
"""

from vocal_melody.cli.common import run_cli
from vocal_melody.cli.extract import main
from vocal_melody.inference.extractor import DEFAULT_WEIGHTS, MelodyExtractor, extract_melody  # noqa: F401

if __name__ == "__main__":
    run_cli(main)
