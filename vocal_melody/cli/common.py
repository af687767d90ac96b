"""What every command shares: one-line errors, the argument parser, the runner.

``run_cli`` prints a :class:`~vocal_melody.errors.MelodyError` as a single ``error: ...`` line and exits
non-zero; only ``--debug`` shows a traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from vocal_melody.errors import MelodyError, one_line
from vocal_melody.fileio import forget_made_dirs, remove_made_dirs_left_empty

EXTRA_OF_MODULE = {"keras": "tf", "tensorflow": "tf", "sox": "training", "pyworld": "synthesis", "mido": "synthesis",
                   "jax": "jax", "ray": "ray", "openvino": "openvino", "nncf": "quantize", "essentia": "benchmarks"}
"""Third-party modules a command may lack, and the extra of pyproject.toml that installs each."""


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The one-line message for a module an extra installs, or None when ``error`` is not about one."""
    missing = (error.name or "").split(".")[0]
    if missing not in EXTRA_OF_MODULE:
        return None
    extra = EXTRA_OF_MODULE[missing]
    return f"this needs the {extra} extra ({missing} is not installed): pip install 'vocal-melody[{extra}]'"


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> None:
    """Run ``main(argv)`` and exit with its code; one-line errors unless ``--debug``."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    forget_made_dirs()
    try:
        code = main(args)
    except MelodyError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {one_line(error)}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; rerun to resume (--skip-existing for extraction, "
              "--resume for training)", file=sys.stderr)
        code = 130
    except ModuleNotFoundError as error:
        if debug:
            traceback.print_exc()
        message = missing_extra(error)
        print(f"error: {message}" if message else f"error: unexpected ModuleNotFoundError: {one_line(error)} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        code = 1
    except Exception as error:  # a bug, not bad input: still one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"error: unexpected {type(error).__name__}: {one_line(error)} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        code = 1
    if code not in (0, 130):  # an interrupted run keeps its folders for --resume
        remove_made_dirs_left_empty()
    sys.exit(code)


class OneLineParser(argparse.ArgumentParser):
    """argparse with usage errors as one ``error:`` line (exit code 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {one_line(message)} (see --help)\n")


def program_name(script: str) -> str:
    """The name usage lines and errors show: the console command's (``vocal-melody...``) when run as one,
    else the paper's script name."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return invoked if invoked.startswith("vocal-melody") else script
