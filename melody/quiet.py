"""Import TensorFlow without its start-up noise.

TensorFlow 2.21 writes oneDNN and CUDA notices to the process's stderr at
import time, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. Users asked for a
melody, not for those lines: the import runs with file descriptor 2
pointed at /dev/null, unless ``MELODY_VERBOSE=1`` (set by ``--verbose``).
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import tensorflow and keras with stderr silenced (a no-op once imported)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules or os.environ.get("MELODY_VERBOSE") == "1":
        import keras  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
