"""Console commands (``[project.scripts]``): each imports its command's module only when run, so a command whose
extra is not installed says so in one line instead of a traceback."""

from __future__ import annotations

import importlib
import sys

from vocal_melody.cli.common import missing_extra


def _run(module: str) -> None:
    try:
        target = importlib.import_module(module)
    except ModuleNotFoundError as error:
        message = missing_extra(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    target.command()  # its run_cli turns a module missing later into the same line


def extract() -> None:
    """``vocal-melody``."""
    _run("vocal_melody.cli.extract")


def evaluate() -> None:
    """``vocal-melody-evaluate``."""
    _run("vocal_melody.cli.evaluate")


def synth() -> None:
    """``vocal-melody-synth``."""
    _run("vocal_melody.lab.cli.synth")


def augment() -> None:
    """``vocal-melody-augment``."""
    _run("vocal_melody.lab.cli.augment")


def train_teacher() -> None:
    """``vocal-melody-train-teacher``."""
    _run("vocal_melody.lab.cli.train_teacher")


def train_student() -> None:
    """``vocal-melody-train-student``."""
    _run("vocal_melody.lab.cli.train_student")
