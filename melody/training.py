"""The training machinery shared by ``train_teacher.py`` and ``train_student.py``.

- :class:`FrameData`: cached spectrograms (memory-mapped float16) and
  per-frame class indices of a set of tracks;
- :func:`normalization_stats`: the per-(frame, bin) mean/std of training
  windows (shape 31 x 513), stored in every bundle;
- :func:`sample_windows`: random 31-frame windows, reproducible from
  ``(seed, epoch, step)`` alone, so a resumed run draws the same batches;
- :func:`validate`: whole-track inference and mir_eval scores;
- :class:`Trainer`: the loop with a time budget, atomic checkpoints,
  resume, best-bundle selection on validation OA, early stopping, a CSV log
  and a progress bar.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import featureExtraction as features
from .bundle import read_bundle, save_bundle
from .datasets import FeatureCache, LabeledTrack, frame_classes
from .errors import MelodyError
from .labels import N_CLASSES, class_to_f0, target_distributions
from .metrics import METRICS, mean_scores, melody_scores
from .quiet import import_tensorflow_quietly

W = features.WINDOW_FRAMES


@dataclass
class FrameData:
    """Spectrograms and frame classes of tracks (classes None for unlabeled audio)."""

    tracks: list[LabeledTrack]
    specs: list[np.ndarray]
    classes: list[np.ndarray | None]

    @property
    def n_frames(self) -> np.ndarray:
        return np.array([len(s) for s in self.specs])

    @property
    def minutes(self) -> float:
        return float(self.n_frames.sum()) * features.FRAME_SECONDS / 60.0


def load_frame_data(tracks: list[LabeledTrack], cache: FeatureCache, progress: bool = True,
                    desc: str = "features") -> FrameData:
    """Spectrograms from the cache (computed on first use) and class indices per frame."""
    from tqdm import tqdm

    specs, classes = [], []
    for track in tqdm(tracks, desc=desc, unit="track", disable=not progress, file=sys.stderr):
        spec = cache.spectrogram(track.audio)
        specs.append(spec)
        if track.f0 is not None:
            check_label_length(track, len(spec))
        classes.append(None if track.f0 is None else frame_classes(track.f0, len(spec)))
    return FrameData(tracks, specs, classes)


LABEL_LENGTH_TOLERANCE = 0.05
"""A label may differ from its audio by a few frames (rounding, a last partial hop), not by more."""


def check_label_length(track: LabeledTrack, n_frames: int) -> None:
    """A label must cover its audio: one that is much shorter or longer belongs to another file."""
    n_label = len(track.f0)
    if abs(n_label - n_frames) > max(5, LABEL_LENGTH_TOLERANCE * n_frames):
        step = features.FRAME_SECONDS
        raise MelodyError(f"{track.audio}: its label ({track.name}) covers {n_label * step:.2f} s but the audio "
                          f"lasts {n_frames * step:.2f} s; a label must cover its audio on the 10 ms grid")


def normalization_stats(specs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per (window frame, bin) over the non-overlapping windows of all tracks."""
    total = np.zeros((W, features.N_BINS))
    total_sq = np.zeros((W, features.N_BINS))
    count = 0
    for spec in specs:
        windows = features.make_windows(np.asarray(spec, dtype=np.float32)).astype(np.float64)
        total += windows.sum(axis=0)
        total_sq += np.square(windows).sum(axis=0)
        count += len(windows)
    if count == 0:
        raise MelodyError("no training audio to compute normalisation statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def _window(spec: np.ndarray, start: int) -> np.ndarray:
    window = np.asarray(spec[start:start + W], dtype=np.float32)
    return features.pad_to_windows(window, float(window.min()))


def sample_windows(data: FrameData, batch_size: int, rng: np.random.Generator,
                   classes_override: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` random windows (tracks chosen in proportion to length): (x dB, class indices)."""
    lengths = data.n_frames
    chosen = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
    x = np.empty((batch_size, W, features.N_BINS), np.float32)
    y = np.zeros((batch_size, W), np.int64)
    labels = classes_override if classes_override is not None else data.classes
    for row, index in enumerate(chosen):
        start = int(rng.integers(0, max(1, lengths[index] - W + 1)))
        x[row] = _window(data.specs[index], start)
        track_classes = labels[index][start:start + W]
        y[row, :len(track_classes)] = track_classes
    return x, y


def predict_activations(model, spec: np.ndarray, mean: np.ndarray, std: np.ndarray,
                        batch_size: int = 64) -> np.ndarray:
    """Per-frame softmax (n_frames, 442) of a whole track."""
    windows = features.normalize(features.make_windows(np.asarray(spec, dtype=np.float32)), mean, std)[..., None]
    if _on_jax():  # compiled once for one batch shape; eager calls would run op by op
        outputs = []
        for i in range(0, len(windows), batch_size):
            batch = windows[i:i + batch_size]
            padded = np.concatenate([batch, np.zeros((batch_size - len(batch), *batch.shape[1:]), batch.dtype)])
            outputs.append(np.asarray(model.predict_on_batch(padded), dtype=np.float32)[:len(batch)])
    else:
        outputs = [np.asarray(model(windows[i:i + batch_size], training=False), dtype=np.float32)
                   for i in range(0, len(windows), batch_size)]
    return np.concatenate(outputs).reshape(-1, N_CLASSES)[:len(spec)]


def validate(model, data: FrameData, mean: np.ndarray, std: np.ndarray) -> tuple[dict[str, float], dict]:
    """Mean mir_eval scores over whole validation tracks (the paper's argmax decoding), and the
    voicing rule that would score best (see :func:`best_voicing`)."""
    activations = [predict_activations(model, spec, mean, std) for spec in data.specs]
    references = _references(data, activations)
    scores = []
    for reference, probabilities in zip(references, activations):
        estimate = class_to_f0(np.argmax(probabilities, axis=1))
        times = features.frame_times(len(reference))
        scores.append(melody_scores(times, reference, times, estimate))
    return mean_scores(scores), best_voicing(activations, references)


def selection_oa(scores: dict[str, float], decoding: dict) -> float:
    """The validation OA that ranks epochs: under the voicing rule the bundle will be decoded with.

    The CLI decodes with the tuned threshold by default, so that is the OA that matters; a noisy
    student is less sure of its voicing than its teacher, and the argmax rule undersells it.
    """
    return float(decoding.get("val_OA_tuned", scores["OA"]))


# ----------------------------------------------------------------------------- the loop

@dataclass
class TrainConfig:
    """Options common to both trainers."""

    run_dir: Path
    batch_size: int = 32
    learning_rate: float = 1e-3
    sigma: float = 1.0
    steps_per_epoch: int = 250
    max_epochs: int = 1000
    patience: int = 10
    max_minutes: float | None = None
    seed: int = 0
    mixed_precision: str | None = None
    tensorboard: bool = False
    progress: bool = True
    save_optimizer: bool = True
    unvoiced_weight: float = 1.0
    optimizer: str = "adam"
    extra_config: dict = field(default_factory=dict)


@dataclass
class TrainState:
    """Where a run is: saved in every checkpoint."""

    epoch: int = 0
    step: int = 0
    best_oa: float = -1.0
    best_epoch: int = -1
    stale_epochs: int = 0
    windows_seen: int = 0
    train_seconds: float = 0.0
    finished: bool = False
    skipped_steps: int = 0


def _on_jax() -> bool:
    from .quiet import keras_backend

    return keras_backend() == "jax"


_JAX_ALL_FINITE = None


def _jax_all_finite(arrays: list) -> bool:
    """One compiled reduction over every array: a per-array check would cost one GPU sync each."""
    global _JAX_ALL_FINITE
    if _JAX_ALL_FINITE is None:
        import jax
        import jax.numpy as jnp

        _JAX_ALL_FINITE = jax.jit(lambda xs: jnp.all(jnp.stack([jnp.isfinite(x).all() for x in xs])))
    return bool(_JAX_ALL_FINITE(arrays))


MAX_CONSECUTIVE_SKIPS = 20
"""Non-finite steps in a row after which a run is declared diverged."""


class FiniteStepGuard:
    """Undoes a training step whose loss or resulting weights are not finite.

    A single step in bfloat16 can turn every weight into NaN (seen once in a Noisy Student run, on
    finite inputs, after 9,000 good steps); without this the run trains on as NaN until the epoch's
    validation notices. The guard keeps a copy of the model's and optimizer's variables after each
    good step and restores it after a bad one, so the step is skipped instead (about 1 % of a step's
    time at the paper's size).
    """

    def __init__(self, model) -> None:
        self.variables = list(model.weights) + list(model.optimizer.variables)
        self.snapshot = self._values()

    def _values(self) -> list:
        if _on_jax():  # JAX arrays are immutable: keeping references is a snapshot, with no copy off the GPU
            return [v.value for v in self.variables]
        return [np.array(v) for v in self.variables]

    def _all_finite(self, values: list) -> bool:
        if _on_jax():
            return bool(_jax_all_finite([a for a in values if np.issubdtype(a.dtype, np.floating)]))
        return all(np.isfinite(a).all() for a in values if a.dtype.kind == "f")

    def accept(self, loss: float) -> bool:
        """True if the step just taken is good (and becomes the new snapshot); else restore the last good one."""
        values = self._values()
        if np.isfinite(loss) and self._all_finite(values):
            self.snapshot = values
            return True
        for variable, value in zip(self.variables, self.snapshot):
            variable.assign(value)
        return False


LOG_FIELDS = ("epoch", "windows_seen", "train_loss", *METRICS, "OA_tuned_voicing", "voicing_threshold",
              "train_minutes", "windows_per_second")


def configure_precision(policy: str | None) -> None:
    """``"bf16"`` (AMX on recent Intel CPUs, and GPUs) or ``"fp16"`` mixed precision; None for float32."""
    import_tensorflow_quietly()
    import keras

    names = {None: "float32", "fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
    if policy not in names:
        raise MelodyError(f"unknown mixed precision {policy!r} (bf16, fp16 or fp32)")
    keras.mixed_precision.set_global_policy(names[policy])


def multi_worker_cluster() -> tuple[int, int] | None:
    """(this worker's index, number of workers) from a ``TF_CONFIG`` with several workers, else None."""
    import json
    import os

    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        workers = list(config["cluster"].get("worker", []))
        chief = list(config["cluster"].get("chief", []))
        task = config["task"]
        index = int(task["index"]) + (len(chief) if task["type"] == "worker" else 0)
    except (ValueError, KeyError, TypeError) as error:
        raise MelodyError(f"TF_CONFIG is not a tf.distribute cluster description ({type(error).__name__}: "
                          f"{error})") from None
    total = len(workers) + len(chief)
    return (index, total) if total > 1 else None


def make_strategy(gpu_index: str | None, cpu_devices: int = 0):
    """A MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several workers; a MirroredStrategy over
    several GPUs (or ``cpu_devices`` logical CPUs, for testing); None for one device."""
    from .engines import require_gpus

    cluster = multi_worker_cluster()
    if cluster is not None and (_on_jax() or cpu_devices > 1):
        raise MelodyError("TF_CONFIG with several workers trains with TensorFlow's MultiWorkerMirroredStrategy: "
                          "use KERAS_BACKEND=tensorflow and no --cpu-devices")
    if _on_jax():
        if cpu_devices > 1 or (gpu_index and "," in gpu_index):
            raise MelodyError("training on several devices needs TensorFlow's MirroredStrategy: "
                              "run with KERAS_BACKEND=tensorflow, or on one GPU")
        require_gpus(gpu_index)
        return None
    import_tensorflow_quietly()
    import tensorflow as tf

    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_devices)])
    require_gpus(gpu_index)
    if cluster is not None:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if gpu_index and "," in gpu_index:
        return tf.distribute.MirroredStrategy()
    return None


_ANY_WORKER = {}


def _any_worker(strategy, flag: bool) -> bool:
    """True when any worker's ``flag`` is true: every worker must stop at the same step."""
    import tensorflow as tf

    if strategy not in _ANY_WORKER:
        @tf.function
        def total(value):
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda v: v, args=(value,)), axis=None)

        _ANY_WORKER[strategy] = total
    return bool(_ANY_WORKER[strategy](tf.constant(1.0 if flag else 0.0)).numpy() > 0.5)


class Trainer:
    """Runs epochs of ``steps_per_epoch`` steps with checkpoints under ``config.run_dir``.

    ``make_batch(epoch, step) -> (x, targets, sample_weight or None)`` supplies
    normalised inputs; the trainer owns the model, optimizer, validation,
    checkpoints (``last.npz`` every epoch and at interruption, ``best.npz``
    on a new best validation OA) and the log (``log.csv``).
    """

    def __init__(self, model_args: dict, config: TrainConfig, mean: np.ndarray, std: np.ndarray,
                 strategy=None, init_weights: list[np.ndarray] | None = None) -> None:
        from model import build_model  # imports TensorFlow quietly

        import keras

        if config.tensorboard and _on_jax():
            raise MelodyError("--tensorboard writes through TensorFlow: leave it out with KERAS_BACKEND=jax "
                              "(RUN_DIR/log.csv has the same numbers)")
        self.config = config
        self.model_args = model_args
        self.mean, self.std = mean, std
        self.state = TrainState()
        self.strategy = strategy
        cluster = multi_worker_cluster() if strategy is not None else None
        self.worker, self.n_workers = cluster or (0, 1)
        if config.batch_size % self.n_workers:
            raise MelodyError(f"--batch-size {config.batch_size} must split evenly over the {self.n_workers} "
                              "workers of TF_CONFIG")
        self.is_chief = self.worker == 0
        self._distributed_step = None
        config.run_dir.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(config.seed)
        configure_precision(config.mixed_precision)
        scope = strategy.scope() if strategy is not None else _null_scope()
        with scope:
            self.model = build_model(**model_args, synchronized_batchnorm=self.n_workers > 1)
            if init_weights is not None:
                self.model.set_weights(init_weights)
            optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[config.optimizer]
            self.model.compile(optimizer=optimizer(config.learning_rate),
                               loss=keras.losses.CategoricalCrossentropy())
            self.model.optimizer.build(self.model.trainable_variables)
        self.log_rows: list[dict] = []
        self.decoding: dict = {"voicing_threshold": None}
        self._writer = None

    # -- checkpoints
    @property
    def last_path(self) -> Path:
        return self.config.run_dir / "last.npz"

    @property
    def best_path(self) -> Path:
        return self.config.run_dir / "best.npz"

    def bundle_config(self) -> dict:
        return {"model": self.model_args, "features": features.FEATURE_DEFINITION,
                "training": {**{k: (str(v) if isinstance(v, Path) else v)
                                for k, v in vars(self.config).items() if k != "extra_config"},
                             **self.config.extra_config},
                "state": vars(self.state), "decoding": self.decoding}

    def _log_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.log_rows)
        return buffer.getvalue()

    def save_checkpoint(self) -> None:
        if not self.is_chief:  # one writer: the workers hold the same weights
            return
        extra = {}
        if self.config.save_optimizer:
            extra = {f"opt_{i:03d}": np.asarray(v) for i, v in enumerate(self.model.optimizer.variables)}
        save_bundle(self.last_path, self.model.get_weights(), self.mean, self.std, self.bundle_config(),
                    self._log_text(), extra=extra)
        from .fileio import write_text_atomic

        write_text_atomic(self.config.run_dir / "log.csv", self._log_text())

    def resume(self) -> bool:
        """Continue from ``last.npz`` if it exists; returns whether it did."""
        if not self.last_path.exists():
            return False
        bundle = read_bundle(self.last_path, expected_features=features.FEATURE_DEFINITION)
        if bundle.model_args != self.model_args:
            raise MelodyError(f"{self.last_path} is a different model {bundle.model_args}; "
                              "use another --run-dir or the same model options")
        self.model.set_weights(bundle.weights)
        self.mean, self.std = bundle.mean, bundle.std
        optimizer_state = [bundle.extra[k] for k in sorted(bundle.extra) if k.startswith("opt_")]
        if optimizer_state and len(optimizer_state) == len(self.model.optimizer.variables):
            for variable, value in zip(self.model.optimizer.variables, optimizer_state):
                variable.assign(value)
        self.state = TrainState(**bundle.config.get("state", {}))
        recorded = bundle.config.get("training", {})
        for key, value in self.config.extra_config.items():  # keep provenance (e.g. --init) across resumes
            if value is None and recorded.get(key) is not None:
                self.config.extra_config[key] = recorded[key]
        self.decoding = bundle.config.get("decoding") or self.decoding
        if bundle.training_log.strip():
            self.log_rows = list(csv.DictReader(io.StringIO(bundle.training_log)))
        return True

    # -- the loop
    def fit(self, make_batch: Callable[[int, int], tuple], validation: FrameData | None,
            on_epoch_end: Callable[[int, dict], None] | None = None) -> TrainState:
        """Train until max epochs, early stop, or the time budget; returns the final state."""
        from tqdm import tqdm

        config, state = self.config, self.state
        budget_s = None if config.max_minutes is None else config.max_minutes * 60.0
        started = time.monotonic()
        stopped_by_budget = False
        guard = FiniteStepGuard(self.model)
        consecutive_skips = 0
        try:
            while state.epoch < config.max_epochs and not state.finished:
                losses = []
                epoch_started = time.monotonic()
                epoch_windows = 0
                bar = tqdm(total=config.steps_per_epoch, initial=state.step, desc=f"epoch {state.epoch + 1}",
                           unit="step", disable=not config.progress or not self.is_chief, file=sys.stderr,
                           leave=False)
                while state.step < config.steps_per_epoch:
                    over_budget = budget_s is not None and time.monotonic() - started >= budget_s
                    if self.n_workers > 1 and budget_s is not None:
                        over_budget = _any_worker(self.strategy, over_budget)
                    if over_budget:
                        stopped_by_budget = True
                        break
                    x, targets, weights = make_batch(state.epoch, state.step)
                    if self.n_workers > 1:  # each worker its share of the global batch; gradients are averaged
                        part = slice(self.worker, None, self.n_workers)
                        x, targets = x[part], targets[part]
                        weights = None if weights is None else weights[part]
                    if self.n_workers > 1:
                        loss = self._multi_worker_step(x, targets, weights)
                    else:
                        loss = float(np.asarray(self.model.train_on_batch(x, targets, sample_weight=weights))
                                     .reshape(-1)[0])
                    if guard.accept(loss):
                        losses.append(loss)
                        consecutive_skips = 0
                    else:
                        state.skipped_steps += 1
                        consecutive_skips += 1
                        if config.progress:
                            bar.write(f"epoch {state.epoch + 1}, step {state.step + 1}: non-finite loss or weights; "
                                      "step undone and skipped", file=sys.stderr)
                    state.step += 1
                    state.windows_seen += len(x) * self.n_workers
                    epoch_windows += len(x) * self.n_workers
                    if consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                        raise MelodyError(f"training diverged: {consecutive_skips} non-finite steps in a row "
                                          f"at epoch {state.epoch + 1}; try a lower --lr")
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
                bar.close()
                state.train_seconds += time.monotonic() - epoch_started
                if stopped_by_budget:
                    break
                self._end_epoch(losses, validation, epoch_windows, time.monotonic() - epoch_started, on_epoch_end)
        except (KeyboardInterrupt, MelodyError):  # the variables are good (the guard restored them): keep them
            self.save_checkpoint()
            raise
        self.save_checkpoint()
        if stopped_by_budget and config.progress:
            print(f"time budget of {config.max_minutes:g} min reached at epoch {state.epoch + 1}, "
                  f"step {state.step}; continue with --resume", file=sys.stderr)
        return state

    def _multi_worker_step(self, x, targets, weights) -> float:
        """One step of every worker on its share; the mean loss over all workers.

        Keras's ``train_on_batch`` cannot reduce its scalar logs under MultiWorkerMirroredStrategy
        (it reduces them along an axis they do not have), so the step runs ``train_step`` itself;
        the optimizer all-reduces the gradients as it does under any strategy.
        """
        import tensorflow as tf

        if self._distributed_step is None:
            strategy, model = self.strategy, self.model

            @tf.function
            def step(data):
                logs = strategy.run(model.train_step, args=(data,))
                return strategy.reduce("MEAN", logs["loss"], axis=None)

            self._distributed_step = step
        self.model.reset_metrics()  # the logged loss is this step's, not a running mean
        data = (x, targets) if weights is None else (x, targets, weights)
        return float(self._distributed_step(data))

    def _end_epoch(self, losses, validation, windows, seconds, on_epoch_end) -> None:
        state, config = self.state, self.config
        if validation:
            scores, self.decoding = validate(self.model, validation, self.mean, self.std)
        else:
            scores = {m: float("nan") for m in METRICS}
        row = {"epoch": state.epoch + 1, "windows_seen": state.windows_seen,
               "train_loss": round(float(np.mean(losses)) if losses else float("nan"), 5),
               **{m: round(scores[m], 4) for m in METRICS},
               "OA_tuned_voicing": self.decoding.get("val_OA_tuned", ""),
               "voicing_threshold": self.decoding.get("voicing_threshold", ""),
               "train_minutes": round(state.train_seconds / 60.0, 2),
               "windows_per_second": round(windows / max(seconds, 1e-9), 2)}
        self.log_rows.append(row)
        state.epoch += 1
        state.step = 0
        oa = selection_oa(scores, self.decoding) if validation else -state.epoch  # none: keep the latest
        if validation is None or oa > state.best_oa:
            state.best_oa, state.best_epoch, state.stale_epochs = float(oa), state.epoch, 0
            if self.is_chief:
                save_bundle(self.best_path, self.model.get_weights(), self.mean, self.std,
                            self.bundle_config(), self._log_text())
        else:
            state.stale_epochs += 1
            if state.stale_epochs >= config.patience:
                state.finished = True
        if config.tensorboard:
            self._tensorboard(row)
        self.save_checkpoint()
        if config.progress and self.is_chief:
            print(f"epoch {row['epoch']}: loss {row['train_loss']:.4f}, val OA {row['OA']:.4f} "
                  f"(tuned voicing {row['OA_tuned_voicing']} at {row['voicing_threshold']}) "
                  f"RPA {row['RPA']:.4f} VFA {row['VFA']:.4f} (best {state.best_oa:.4f} at epoch "
                  f"{state.best_epoch}), {row['windows_per_second']} windows/s", file=sys.stderr)
        if on_epoch_end is not None:
            on_epoch_end(state.epoch, row)

    def _tensorboard(self, row: dict) -> None:
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.config.run_dir / "tensorboard"))
        with self._writer.as_default():
            for name in ("train_loss", *METRICS):
                tf.summary.scalar(name, float(row[name]), step=int(row["epoch"]))
            self._writer.flush()


class _null_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def supervised_batch(data: FrameData, mean: np.ndarray, std: np.ndarray, batch_size: int, sigma: float,
                     seed: int, unvoiced_weight: float = 1.0) -> Callable[[int, int], tuple]:
    """``make_batch`` for supervised training on labeled frames."""

    def make_batch(epoch: int, step: int):
        rng = np.random.default_rng([seed, epoch, step])
        x, classes = sample_windows(data, batch_size, rng)
        weights = frame_weights(classes, np.ones(len(classes), np.float32), unvoiced_weight)
        return features.normalize(x, mean, std)[..., None], target_distributions(classes, sigma), weights

    return make_batch


def frame_weights(classes: np.ndarray, window_weights: np.ndarray, unvoiced_weight: float = 1.0) -> np.ndarray | None:
    """Loss weight per output frame (batch, 31): the window's weight, times ``unvoiced_weight`` on no-voice frames.

    None when the options weigh every frame 1 (the paper's plain cross-entropy), whatever the batch holds,
    so that every step of a run gets the same kind of inputs.
    """
    window_weights = np.asarray(window_weights, np.float32)
    if unvoiced_weight == 1.0 and np.all(window_weights == 1.0):
        return None
    weights = np.repeat(window_weights[:, None], classes.shape[1], axis=1)
    return np.where(classes == 0, weights * np.float32(unvoiced_weight), weights).astype(np.float32)


VOICING_CANDIDATES = tuple(round(float(v), 2) for v in np.arange(0.20, 0.96, 0.05))
"""Up to 0.95: the shipped model's validation OA still rose past 0.8, the old grid's edge."""


def best_voicing(activations: list[np.ndarray], references: list[np.ndarray]) -> dict:
    """The voicing rule with the best mean OA: the paper's argmax (kept on ties) or a threshold on 1 - p(no voice)."""
    from melodyExtraction_NS import decode

    def mean_oa(threshold):
        scores = []
        for reference, probabilities in zip(references, activations):
            f0, _ = decode(probabilities, voicing_threshold=threshold)
            times = features.frame_times(len(f0))
            scores.append(melody_scores(times, reference, times, f0))
        return mean_scores(scores)["OA"]

    results = {None: mean_oa(None)}
    for threshold in VOICING_CANDIDATES:
        results[threshold] = mean_oa(threshold)
    best = max(results, key=lambda k: (results[k], k is None))
    return {"voicing_threshold": best, "val_OA_argmax": round(results[None], 4),
            "val_OA_tuned": round(results[best], 4)}


def tune_voicing(bundle_path: Path, validation: FrameData, progress: bool = False) -> dict:
    """Choose the voicing rule on validation data for an existing bundle and store it in the bundle."""
    from melodyExtraction_NS import MelodyExtractor

    extractor = MelodyExtractor(bundle_path)
    activations = [extractor.activations_from_spectrogram(spec) for spec in validation.specs]
    decoding = best_voicing(activations, _references(validation, activations))
    bundle = read_bundle(bundle_path)
    save_bundle(bundle_path, bundle.weights, bundle.mean, bundle.std, dict(bundle.config, decoding=decoding),
                bundle.training_log, extra=bundle.extra)
    if progress:
        print(f"voicing: {decoding}", file=sys.stderr)
    return decoding


def _references(data: FrameData, activations: list[np.ndarray]) -> list[np.ndarray]:
    return [np.pad(t.f0, (0, max(0, len(a) - len(t.f0))))[:len(a)] for t, a in zip(data.tracks, activations)]
