"""The user-facing error: a problem the user can fix, explained in one line.

Every layer raises :class:`MelodyError` for bad input, missing weights or an unwritable folder;
:func:`vocal_melody.cli.common.run_cli` prints it as a single ``error: ...`` line.
"""

from __future__ import annotations

import sys


class MelodyError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def warn(message: str) -> None:
    """A one-line ``warning: ...`` on stderr: the work goes on, the user should know."""
    print(f"warning: {one_line(message)}", file=sys.stderr)


def one_line(message: object) -> str:
    """Collapse an exception message to a single line."""
    return " ".join(str(message).split())
