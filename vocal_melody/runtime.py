"""The process setup every command shares, and the one place that decides devices: visible GPUs (and the
check that Keras sees them), the Keras backend, and a quiet TensorFlow import.

TensorFlow 2.21 writes oneDNN and CUDA notices to the process's stderr at
import time, whatever ``TF_CPP_MIN_LOG_LEVEL`` says: the import runs with file descriptor 2
pointed at /dev/null, unless ``MELODY_VERBOSE=1`` (set by ``--verbose``).

``KERAS_BACKEND=jax`` trains on a machine that has JAX but no TensorFlow
(the GPU path of the recipe); TensorFlow is then never imported.
"""

from __future__ import annotations

import os
import sys

from vocal_melody.errors import MelodyError


def keras_backend() -> str:
    """The Keras backend this process uses: ``KERAS_BACKEND``, TensorFlow by default."""
    return os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def configure_runtime(gpu_index: str | None, verbose: bool = False) -> None:
    """Before Keras is imported: the GPUs the process may use (none when None), the backend, TensorFlow's verbosity."""
    os.environ["CUDA_VISIBLE_DEVICES"] = "" if gpu_index is None else str(gpu_index)
    keras_backend()
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        os.environ["MELODY_VERBOSE"] = "1"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_tensorflow_quietly() -> None:
    """Import keras (and tensorflow, its default backend) with stderr silenced (a no-op once imported)."""
    if "keras" in sys.modules or os.environ.get("MELODY_VERBOSE") == "1" or keras_backend() != "tensorflow":
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


TF_EXTRA_HINT = "pip install 'vocal-melody[tf]'"
PLOT_EXTRA_HINT = "pip install 'vocal-melody[plot]'"


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (``--plot`` needs it; extraction does not)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def tensorflow_available() -> bool:
    """Whether Keras and TensorFlow are installed (the tf engine and converting a bundle to OpenVINO need them;
    the shipped weights' int8 model does not)."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(name) is not None for name in ("keras", "tensorflow"))
    except ImportError:  # a finder that refuses the name
        return False


def require_gpus(gpu_index: str | None) -> None:
    """Raise a one-line error unless Keras's backend sees every GPU asked for (CUDA_VISIBLE_DEVICES already set)."""
    if gpu_index is None:
        return
    if keras_backend() == "tensorflow" and not tensorflow_available():
        raise MelodyError(f"-gpu {gpu_index}: running on a GPU needs TensorFlow: {TF_EXTRA_HINT}")
    import_tensorflow_quietly()
    backend = keras_backend()
    wanted = len(gpu_index.split(","))
    if backend == "jax":
        import jax

        try:
            found = len(jax.devices("gpu"))
        except RuntimeError:  # no GPU platform at all
            found = 0
        build = "CUDA build of jaxlib"
    else:
        import tensorflow as tf

        found = len(tf.config.list_physical_devices("GPU"))
        build = "CUDA build of TensorFlow"
    if found < wanted:
        raise MelodyError(f"-gpu {gpu_index}: Keras's {backend} backend finds {found} of the {wanted} GPUs asked for "
                          f"on this machine (no GPU, no {build}, or another index); leave out -gpu to "
                          "run on the CPU")
