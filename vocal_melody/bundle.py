"""Weights bundles: one self-contained ``.npz`` file per trained model.

A bundle holds everything inference and further training need, readable
with numpy alone (no TensorFlow import):

- ``weight_000`` ... : the model's weights in ``model.get_weights()`` order,
- ``mean``, ``std``: normalisation statistics, shape (31, 513),
- ``config``: JSON with the model arguments, the label and feature
  definitions it was trained with, and free-form training metadata,
- ``training_log`` (optional): CSV text of the per-epoch log.

Bundles are written atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vocal_melody.errors import MelodyError
from vocal_melody.fileio import atomic_path
from vocal_melody.labels import LABEL_DEFINITION

BUNDLE_FORMAT = "vocal-melody-bundle/1"
WEIGHTS_VARIABLE = "VOCAL_MELODY_WEIGHTS"
WEIGHTS_FOLDER = Path(__file__).resolve().parent / "weights"
MODELS = {"full": "melody_crnn.npz", "small": "melody_crnn_small.npz", "tiny": "melody_crnn_tiny.npz"}
"""Model capacities (``--model``) and their bundles in the package: ``full`` is the paper's CRNN, the others are
narrower students distilled from it (their widths are in their bundles; the model card says what each costs)."""
DEFAULT_MODEL = "full"
DEFAULT_WEIGHTS = Path(os.environ.get(WEIGHTS_VARIABLE) or WEIGHTS_FOLDER / MODELS[DEFAULT_MODEL])
"""The shipped model (package data), used when no ``-w`` is given; the environment variable overrides it."""
TRAIN_HINT = "train one with `python train_teacher.py`, or name an existing .npz bundle"


def shipped_models() -> list[str]:
    """The capacities whose bundles this installation holds (``full`` first)."""
    return [name for name, file in MODELS.items()
            if (DEFAULT_WEIGHTS if name == DEFAULT_MODEL else WEIGHTS_FOLDER / file).is_file()]


def model_weights(model: str | None = None, weights: str | os.PathLike | None = None) -> Path:
    """The bundle to load: ``weights`` if given, else the shipped bundle of capacity ``model`` (default ``full``).

    One-line errors for both at once, an unknown capacity, and one this installation does not ship.
    """
    if weights is not None and model is not None:
        raise MelodyError("give a weights file or a model capacity, not both")
    if weights is not None:
        return Path(weights)
    model = model or DEFAULT_MODEL
    if model not in MODELS:
        raise MelodyError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    path = DEFAULT_WEIGHTS if model == DEFAULT_MODEL else WEIGHTS_FOLDER / MODELS[model]
    if not path.is_file():
        raise MelodyError(f"model {model!r} is not shipped with this version (shipped: "
                          f"{', '.join(shipped_models()) or 'none'})")
    return path


@dataclass(frozen=True)
class Decoding:
    """How a bundle's softmax becomes a melody (``config["decoding"]``, written when it was trained or tuned): a
    voicing threshold on ``1 - p(no voice)`` (None: the paper's argmax rule) and the validation OA that chose it."""

    voicing_threshold: float | None = None
    val_OA_argmax: float | None = None
    val_OA_tuned: float | None = None

    @classmethod
    def from_config(cls, entry: dict | None) -> "Decoding":
        entry = entry or {}
        values = [None if entry.get(key) is None else float(entry[key])
                  for key in ("voicing_threshold", "val_OA_argmax", "val_OA_tuned")]
        return cls(*values)

    def to_config(self) -> dict:
        """The bundle's ``config["decoding"]`` entry (the keys that are set)."""
        entry: dict = {"voicing_threshold": self.voicing_threshold}
        entry.update({k: v for k, v in (("val_OA_argmax", self.val_OA_argmax), ("val_OA_tuned", self.val_OA_tuned))
                      if v is not None})
        return entry


@dataclass
class Bundle:
    """A loaded weights bundle."""

    weights: list[np.ndarray]
    mean: np.ndarray
    std: np.ndarray
    config: dict
    training_log: str = ""
    path: Path | None = field(default=None)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def model_args(self) -> dict:
        """Keyword arguments for ``model.build_model``."""
        return dict(self.config.get("model", {}))

    @property
    def decoding(self) -> Decoding:
        """The decoding rule chosen on validation data (the CLI's default ``--voicing-threshold tuned``)."""
        return Decoding.from_config(self.config.get("decoding"))

    @property
    def training_record(self) -> dict:
        """What trained it: the run's options and per-epoch state (``config["training"]``, ``config["state"]``)."""
        return {"training": dict(self.config.get("training", {})), "state": dict(self.config.get("state", {}))}


def save_bundle(path: str | os.PathLike, weights: list[np.ndarray], mean: np.ndarray,
                std: np.ndarray, config: dict, training_log: str = "",
                dtype: str | None = None, extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write a bundle to ``path`` atomically and return the path.

    ``config`` must contain ``model`` (build arguments) and ``features``;
    the label definition is added here. ``dtype="float16"`` halves the file
    (used for resumable checkpoints; shipped weights keep float32).
    ``extra`` arrays (e.g. optimizer state, names starting with ``extra_``)
    are stored alongside.
    """
    path = Path(path)
    config = dict(config)
    config["format"] = BUNDLE_FORMAT
    config["labels"] = LABEL_DEFINITION
    arrays = {f"weight_{i:03d}": np.asarray(w, dtype=dtype or np.asarray(w).dtype)
              for i, w in enumerate(weights)}
    arrays["mean"] = np.asarray(mean, dtype=np.float32)
    arrays["std"] = np.asarray(std, dtype=np.float32)
    arrays["config"] = np.array(json.dumps(config, sort_keys=True))
    arrays["training_log"] = np.array(training_log)
    for name, value in (extra or {}).items():
        arrays[f"extra_{name}"] = np.asarray(value)
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def read_bundle(path: str | os.PathLike, expected_features: dict | None = None) -> Bundle:
    """Read and validate a bundle; every problem is a one-line :class:`MelodyError`."""
    path = Path(path)
    if not path.exists():
        raise MelodyError(f"weights file {path} not found: {TRAIN_HINT}")
    if path.is_dir():
        raise MelodyError(f"weights path {path} is a folder, expected a .npz weights bundle")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            missing = {"config", "mean", "std"} - names
            if missing:
                raise MelodyError(f"{path} is not a weights bundle (missing {', '.join(sorted(missing))})")
            config = json.loads(str(archive["config"]))
            n_weights = len([n for n in names if n.startswith("weight_")])
            weights = [archive[f"weight_{i:03d}"].astype(np.float32) for i in range(n_weights)]
            mean = archive["mean"].astype(np.float32)
            std = archive["std"].astype(np.float32)
            log = str(archive["training_log"]) if "training_log" in names else ""
            extra = {n[len("extra_"):]: archive[n] for n in names if n.startswith("extra_")}
    except MelodyError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise MelodyError(f"{path} is not a valid weights bundle (corrupt or truncated: "
                          f"{type(error).__name__})") from error
    if config.get("format") != BUNDLE_FORMAT:
        raise MelodyError(f"{path}: unknown bundle format {config.get('format')!r}")
    if config.get("labels") != LABEL_DEFINITION:
        raise MelodyError(f"{path}: trained with a different pitch-label definition "
                          f"{config.get('labels')} (this code uses {LABEL_DEFINITION})")
    if expected_features is not None and config.get("features") != expected_features:
        raise MelodyError(f"{path}: trained with different feature parameters {config.get('features')}")
    if not weights:
        raise MelodyError(f"{path}: bundle holds no weights")
    if mean.shape != std.shape or mean.ndim != 2:
        raise MelodyError(f"{path}: normalisation statistics have shapes {mean.shape} and {std.shape}")
    broken = [i for i, w in enumerate(weights) if not np.isfinite(w).all()]
    if broken or not (np.isfinite(mean).all() and np.isfinite(std).all()):
        what = f"weight array {broken[0]}" if broken else "normalisation statistics"
        raise MelodyError(f"{path}: {what} holds NaN or infinite values (a diverged or damaged model)")
    if (std < 0).any():
        raise MelodyError(f"{path}: negative standard deviations in the normalisation statistics")
    return Bundle(weights, mean, std, config, log, path, extra)
