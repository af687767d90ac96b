"""Inference engines for a weights bundle: OpenVINO (fast path) and TensorFlow (reference).

Both take normalised windows ``(n, 31, 513, 1)`` float32 and return the
per-frame softmax ``(n, 31, 442)`` float32.

- ``openvino``: the Keras model exported as a TF SavedModel and converted
  with ``openvino.convert_model``, compiled for the CPU with
  ``INFERENCE_PRECISION_HINT=bf16`` where the CPU has bf16 units (AMX or
  AVX512-BF16) and oneDNN may use them (``ONEDNN_MAX_CPU_ISA``), else f32.
  The converted model is cached in the user's cache folder
  (``$XDG_CACHE_HOME/vocal-melody/openvino/<digest>/``, by default under ``~/.cache``),
  keyed by the bundle's content: only the first run imports TensorFlow; later runs load the cached model without it.
- ``int8``: the bundle's int8-quantized OpenVINO model (3x3 convolutions in
  int8, see :mod:`vocal_melody.inference.quantize`), shipped beside the bundle as
  ``<bundle>.int8/`` and used only when made from exactly that bundle.
- ``tf``: Keras 3 / TensorFlow float32, the reference the fast paths are
  checked against.

``auto`` picks int8 when a matching int8 model exists and the CPU has int8
units (or TensorFlow is not installed: the int8 model is then the one that
runs without it), else ``openvino``, else ``tf``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Protocol, runtime_checkable

import numpy as np

from vocal_melody.bundle import Bundle
from vocal_melody.cache import file_digest
from vocal_melody.errors import MelodyError
from vocal_melody.features import WINDOW_FRAMES
from vocal_melody.labels import N_CLASSES
from vocal_melody.runtime import TF_EXTRA_HINT, import_tensorflow_quietly, tensorflow_available

ENGINES = ("auto", "int8", "openvino", "tf")
INT8_SOURCE_FILE = "source.json"
"""Written beside an int8 model: the digest of the bundle it was made from."""


@runtime_checkable
class Engine(Protocol):
    """What every engine is: normalised windows ``(n, 31, 513, 1)`` float32 in, softmax ``(n, 31, 442)`` out."""

    name: str

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        ...


def in_batches(call: Callable[[np.ndarray], np.ndarray], windows: np.ndarray, batch_size: int) -> np.ndarray:
    """``call`` (a model or an engine) on consecutive batches of windows; softmax ``(n, 31, 442)``."""
    outputs = [call(windows[start:start + batch_size]) for start in range(0, len(windows), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, WINDOW_FRAMES, N_CLASSES))


def cache_home() -> Path:
    """The user's cache folder for this tool (``$XDG_CACHE_HOME/vocal-melody``, default ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vocal-melody"


def int8_folder(bundle_path: str | os.PathLike) -> Path:
    """Where the int8 model of a bundle lives: ``weights/melody_crnn.npz`` -> ``weights/melody_crnn.int8/``."""
    return Path(bundle_path).with_suffix(".int8")


def matching_int8_model(bundle: Bundle) -> Path | None:
    """The .xml of the bundle's int8 model if one exists and was made from exactly this bundle."""
    if not bundle.path:
        return None
    folder = int8_folder(bundle.path)
    try:
        source = json.loads((folder / INT8_SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None
    xml = folder / "model.xml"
    if source.get("bundle_digest") != file_digest(bundle.path) or not xml.exists():
        return None
    return xml


def openvino_available() -> bool:
    """Whether the openvino package is installed (the int8 and openvino engines need it)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class TFEngine:
    """Keras model in float32 (or the global mixed-precision policy)."""

    name = "tf"

    SUB_BATCH = 8
    """Windows per graph call, every call the same shape (the last padded): eager Keras held about 100 MB per
    window (6.8 GB at the default batch of 64); on CPUs one XLA-compiled graph of 8 windows holds the least."""

    def __init__(self, bundle: Bundle) -> None:
        if not tensorflow_available():
            raise MelodyError(f"the tf engine needs TensorFlow: {TF_EXTRA_HINT}")
        import tensorflow as tf

        from vocal_melody.model import model_from_bundle

        self.model = model_from_bundle(bundle)
        self._shape = tuple(self.model.input_shape[1:])
        on_cpu = not tf.config.list_logical_devices("GPU")  # GPUs keep the plain graph: XLA there needs ptxas
        self._predict = tf.function(lambda batch: self.model(batch, training=False), jit_compile=on_cpu,
                                    input_signature=[tf.TensorSpec((self.SUB_BATCH, *self._shape), tf.float32)])

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        windows = np.asarray(windows, dtype=np.float32).reshape(-1, *self._shape)
        n = len(windows)
        if n % self.SUB_BATCH:  # one compiled shape: pad with copies of the last window, cut after
            windows = np.concatenate([windows, np.repeat(windows[-1:], self.SUB_BATCH - n % self.SUB_BATCH, 0)])
        parts = [np.asarray(self._predict(windows[i:i + self.SUB_BATCH]), dtype=np.float32)
                 for i in range(0, len(windows), self.SUB_BATCH)]
        return np.concatenate(parts)[:n] if parts else np.zeros((0, *self.model.output_shape[1:]), np.float32)


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Build Keras models in float32 inside this block, whatever the global mixed-precision policy."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _cache_folder(bundle: Bundle) -> Path:
    import openvino

    digest = file_digest(bundle.path) if bundle.path else "unsaved"
    return cache_home() / "openvino" / f"{digest}-ov{openvino.__version__.split('-')[0]}"


def convert_to_openvino(bundle: Bundle, folder: Path) -> Path:
    """Export the bundle's model to OpenVINO IR in ``folder`` (atomically); returns the .xml path."""
    import openvino

    if not tensorflow_available():
        raise MelodyError(f"{bundle.path or 'these weights'}: no int8 model matches them, and converting them to "
                          f"OpenVINO needs TensorFlow: {TF_EXTRA_HINT}")

    import_tensorflow_quietly()
    from vocal_melody.model import model_from_bundle

    with float32_policy():  # OpenVINO converts float32 graphs; a training run may have set bf16 globally
        model = model_from_bundle(bundle)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as work:
        saved_model = Path(work) / "saved_model"
        model.export(str(saved_model), format="tf_saved_model", verbose=False)
        converted = openvino.convert_model(str(saved_model))
        # the converter records its input's path; a temporary folder's name means nothing in a shipped file
        converted.set_rt_info(saved_model.name, ["conversion_parameters", "input_model"])
        staging = Path(work) / "ir"
        openvino.save_model(converted, str(staging / "model.xml"))
        try:
            os.replace(staging, folder)  # another process may have won the race: both are the same
        except OSError:
            if not (folder / "model.xml").exists():
                raise
    return folder / "model.xml"


class OpenVINOEngine:
    """The bundle's model compiled by OpenVINO for this CPU."""

    name = "openvino"

    def __init__(self, bundle: Bundle, precision: str = "auto", quantized_xml: Path | None = None) -> None:
        import openvino

        core = openvino.Core()
        if precision == "auto":
            precision = "bf16" if "BF16" in cpu_capabilities() else "f32"
        self.precision = precision
        config = {"INFERENCE_PRECISION_HINT": precision}  # for the layers left in float
        if quantized_xml is not None:
            self.name = "int8"
            try:
                self.compiled = core.compile_model(str(quantized_xml), "CPU", config)
            except RuntimeError as error:
                raise MelodyError(f"OpenVINO cannot compile {quantized_xml}: {error}") from error
            self.request = self.compiled.create_infer_request()
            return
        folder = _cache_folder(bundle)
        xml = folder / "model.xml"
        if not xml.exists():
            xml = convert_to_openvino(bundle, folder)
        try:
            self.compiled = core.compile_model(str(xml), "CPU", config)
        except RuntimeError:  # a damaged cache entry: rebuild it once
            shutil.rmtree(folder, ignore_errors=True)
            xml = convert_to_openvino(bundle, folder)
            try:
                self.compiled = core.compile_model(str(xml), "CPU", config)
            except RuntimeError as error:
                raise MelodyError(f"OpenVINO cannot compile the model: {error}") from error
        self.request = self.compiled.create_infer_request()

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: np.ascontiguousarray(windows, dtype=np.float32)})
        return np.asarray(result[self.compiled.output(0)], dtype=np.float32)


ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
"""oneDNN's instruction-set cap, which OpenVINO's kernels obey and its capability list does not."""


def isa_cap() -> str | None:
    """The instruction set oneDNN is capped at (e.g. ``AVX2``), or None when it may use all of the CPU's."""
    for variable in ISA_CAP_VARIABLES:
        value = os.environ.get(variable, "").strip().upper()
        if value and value not in ("ALL", "DEFAULT"):
            return value
    return None


def cpu_capabilities() -> list[str]:
    """OpenVINO's optimisation capabilities of this CPU (e.g. FP32, BF16, INT8), less bf16 under an ISA cap
    without it (OpenVINO would pick bf16 kernels the cap forbids, and the LSTM fails to compile)."""
    import openvino

    capabilities = list(openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    cap = isa_cap()
    if cap is not None and not any(unit in cap for unit in ("BF16", "AMX", "AVX10", "FP16")):
        capabilities = [c for c in capabilities if c != "BF16"]
    return capabilities


def make_engine(bundle: Bundle, name: str = "auto") -> Engine:
    """The engine ``name`` for a bundle (see the module docstring for what ``auto`` picks)."""
    if name not in ENGINES:
        raise MelodyError(f"unknown engine {name!r} (choose from {', '.join(ENGINES)})")
    if name in ("int8", "openvino") and not openvino_available():
        raise MelodyError(f"the {name} engine needs the openvino package: pip install openvino")
    if name == "auto":
        if not openvino_available():
            return TFEngine(bundle)
        quantized = matching_int8_model(bundle)
        # without TensorFlow the int8 model is the one model there is, int8 units or not
        if quantized is not None and ("INT8" in cpu_capabilities() or not tensorflow_available()):
            try:
                return OpenVINOEngine(bundle, quantized_xml=quantized)
            except MelodyError:  # a damaged int8 model: the float model gives the same melody
                if not tensorflow_available():
                    raise
        return OpenVINOEngine(bundle)
    if name == "int8":
        quantized = matching_int8_model(bundle)
        if quantized is None:
            raise MelodyError(f"no int8 model made from {bundle.path or 'this bundle'}: "
                              "make one with scripts/quantize_weights.py")
        return OpenVINOEngine(bundle, quantized_xml=quantized)
    if name == "openvino":
        return OpenVINOEngine(bundle)
    return TFEngine(bundle)
