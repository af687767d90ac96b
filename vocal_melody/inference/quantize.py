"""Post-training int8 quantization of a bundle's OpenVINO model (NNCF), shipped beside the bundle.

Only the eight 3x3 convolutions, most of the model's time, are quantized,
with full bias correction: quantizing every layer falls below the
identical-voicing bar against the float32 reference (docs/engineering.md has
the numbers).

The quantized model needs calibration audio, so it is not built on the
fly: ``scripts/quantize_weights.py`` writes ``<bundle>.int8/`` (model.xml,
model.bin, source.json with the bundle's digest), and the engine uses it
only when that digest matches the bundle it was given.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from vocal_melody.bundle import Bundle
from vocal_melody.cache import file_digest
from vocal_melody.errors import MelodyError
from vocal_melody.fileio import write_text_atomic
from vocal_melody.inference.engines import INT8_SOURCE_FILE, convert_to_openvino, int8_folder

def conv3x3_names(model) -> list[str]:
    """Names of the 3x3 convolutions of an OpenVINO model, in graph order."""
    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_type_name() == "Convolution" and list(op.get_input_partial_shape(1))[2:] == [3, 3]]


def quantize_bundle(bundle: Bundle, calibration: Sequence[np.ndarray], info: dict | None = None) -> Path:
    """Quantize the bundle's 3x3 convolutions to int8 with ``calibration`` windows; returns the .xml path.

    ``calibration``: normalised windows of shape (31, 513, 1), a few hundred
    from the training data. Writes ``<bundle>.int8/`` atomically.
    """
    try:
        import nncf
    except ImportError:
        raise MelodyError("quantization needs the nncf package: pip install nncf") from None
    import openvino


    if not bundle.path:
        raise MelodyError("quantization needs a bundle read from a file")
    if len(calibration) == 0:
        raise MelodyError("no calibration windows")
    folder = int8_folder(bundle.path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as work:
        xml = convert_to_openvino(bundle, Path(work) / "float")
        model = openvino.Core().read_model(str(xml))
        keep = set(conv3x3_names(model))
        others = [op.get_friendly_name() for op in model.get_ordered_ops()
                  if op.get_type_name() == "Convolution" and op.get_friendly_name() not in keep]
        quantized = nncf.quantize(
            model, nncf.Dataset(list(calibration), lambda window: window[None].astype(np.float32)),
            subset_size=len(calibration), preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=False,
            ignored_scope=nncf.IgnoredScope(names=others, types=["MatMul"]))
        staging = Path(work) / "int8"
        openvino.save_model(quantized, str(staging / "model.xml"), compress_to_fp16=True)
        source = {"bundle": Path(bundle.path).name, "bundle_digest": file_digest(bundle.path),
                  "quantized": "3x3 convolutions (int8, per-channel weights); the rest float",
                  "calibration_windows": len(calibration), "openvino": openvino.__version__,
                  "nncf": nncf.__version__, **(info or {})}
        write_text_atomic(staging / INT8_SOURCE_FILE, json.dumps(source, indent=1) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    return folder / "model.xml"
