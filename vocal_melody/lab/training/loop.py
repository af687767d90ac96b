"""The training loop shared by both trainers: :class:`Trainer` with a time budget, atomic checkpoints,
resume, best-bundle selection on validation OA, early stopping, a CSV log, a progress bar, and a guard
that undoes non-finite steps.
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

from vocal_melody import features
from vocal_melody.bundle import read_bundle, save_bundle
from vocal_melody.errors import MelodyError
from vocal_melody.evaluation import METRICS
from vocal_melody.fileio import csv_text, write_text_atomic
from vocal_melody.lab.training.distribute import any_worker, configure_precision, multi_worker_cluster, on_jax
from vocal_melody.lab.training.frames import FrameData
from vocal_melody.lab.training.losses import melody_loss
from vocal_melody.lab.training.voicing import selection_oa, validate


DEFAULT_LEARNING_RATE = 1e-3


@dataclass
class TrainConfig:
    """Options common to both trainers."""

    run_dir: Path
    batch_size: int = 32
    learning_rate: float | None = None
    """None: ``DEFAULT_LEARNING_RATE`` for a new run, the run's own when it resumes."""
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
    voicing_loss_weight: float = 0.0
    optimizer: str = "adam"
    freeze_backbone: bool = False
    val_mean: str = "tracks"
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

    A single step in bfloat16 can turn every weight into NaN on finite inputs; without this the run
    trains on as NaN until the epoch's validation notices. The guard keeps a copy of the model's and
    optimizer's variables after each good step and restores it after a bad one, so the step is skipped.
    """

    def __init__(self, model) -> None:
        self.variables = list(model.weights) + list(model.optimizer.variables)
        self.snapshot = self._values()

    def _values(self) -> list:
        if on_jax():  # JAX arrays are immutable: keeping references is a snapshot, with no copy off the GPU
            return [v.value for v in self.variables]
        return [np.array(v) for v in self.variables]

    def _all_finite(self, values: list) -> bool:
        if on_jax():
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


class Trainer:
    """Runs epochs of ``steps_per_epoch`` steps with checkpoints under ``config.run_dir``.

    ``make_batch(epoch, step) -> (x, targets, sample_weight or None)`` supplies
    normalised inputs; the trainer owns the model, optimizer, validation,
    checkpoints (``last.npz`` every epoch and at interruption, ``best.npz``
    on a new best validation OA) and the log (``log.csv``).
    """

    def __init__(self, model_args: dict, config: TrainConfig, mean: np.ndarray, std: np.ndarray,
                 strategy=None, init_weights: list[np.ndarray] | None = None) -> None:
        # imports TensorFlow quietly: only when a model is trained
        from vocal_melody.model import build_model, freeze_resnet_blocks

        import keras

        if config.tensorboard and on_jax():
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
        self._guard: FiniteStepGuard | None = None
        self._consecutive_skips = 0
        config.run_dir.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(config.seed)
        configure_precision(config.mixed_precision)
        scope = strategy.scope() if strategy is not None else _null_scope()
        with scope:
            self.model = build_model(**model_args, synchronized_batchnorm=self.n_workers > 1)
            if init_weights is not None:
                self.model.set_weights(init_weights)
            if config.freeze_backbone:
                freeze_resnet_blocks(self.model)
            optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[config.optimizer]
            self.model.compile(optimizer=optimizer(config.learning_rate or DEFAULT_LEARNING_RATE),
                               loss=melody_loss(config.voicing_loss_weight))
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
        recorded = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.config).items()
                    if k != "extra_config"}
        recorded["learning_rate"] = self.learning_rate  # the one in use (a resume may have changed it)
        return {"model": self.model_args, "features": features.FEATURE_DEFINITION,
                "training": {**recorded, **self.config.extra_config},
                "state": vars(self.state), "decoding": self.decoding}

    def _log_text(self) -> str:
        return csv_text(self.log_rows, LOG_FIELDS)

    def save_checkpoint(self) -> None:
        if not self.is_chief:  # one writer: the workers hold the same weights
            return
        extra = {}
        if self.config.save_optimizer:
            extra = {f"opt_{i:03d}": np.asarray(v) for i, v in enumerate(self.model.optimizer.variables)}
        save_bundle(self.last_path, self.model.get_weights(), self.mean, self.std, self.bundle_config(),
                    self._log_text(), extra=extra)
        write_text_atomic(self.config.run_dir / "log.csv", self._log_text())

    @property
    def learning_rate(self) -> float:
        return float(f"{float(np.asarray(self.model.optimizer.learning_rate)):.6g}")  # float32 -> as given

    def resume(self, reopen: bool = True) -> bool:
        """Continue from ``last.npz`` if it exists; returns whether it did.

        A run ended by early stopping goes on when ``config.patience`` is now larger than its epochs without
        gain, unless ``reopen`` is false (a student iteration whose best already taught the next one).
        """
        if not self.last_path.exists():
            return False
        bundle = read_bundle(self.last_path, expected_features=features.FEATURE_DEFINITION)
        if bundle.model_args != self.model_args:
            raise MelodyError(f"{self.last_path} is a different model {bundle.model_args}; "
                              "use another --run-dir or the same model options")
        recorded = bundle.config.get("training", {})
        if bool(recorded.get("freeze_backbone")) != self.config.freeze_backbone:
            # the other way round would train (or freeze) the ResNet blocks halfway through a run
            wanted = "with" if recorded.get("freeze_backbone") else "without"
            raise MelodyError(f"{self.last_path} was trained {wanted} --freeze-backbone; resume it {wanted} it")
        chosen_by = recorded.get("val_mean", "tracks")
        if chosen_by != self.config.val_mean:  # its best score so far was a mean of another kind
            raise MelodyError(f"{self.last_path} was validated with --val-mean {chosen_by}; resume it with the same")
        self.model.set_weights(bundle.weights)
        self.mean, self.std = bundle.mean, bundle.std
        optimizer_state = [bundle.extra[k] for k in sorted(bundle.extra) if k.startswith("opt_")]
        if optimizer_state and len(optimizer_state) == len(self.model.optimizer.variables):
            for variable, value in zip(self.model.optimizer.variables, optimizer_state):
                variable.assign(value)  # the learning rate too: the run's own, unless --lr gives another
        elif self.config.learning_rate is None and recorded.get("learning_rate"):
            self.model.optimizer.learning_rate.assign(float(recorded["learning_rate"]))
        if self.config.learning_rate is not None and self.config.learning_rate != self.learning_rate:
            if self.config.progress and self.is_chief:
                print(f"{self.last_path}: resumed at learning rate {self.config.learning_rate:g} "
                      f"(the run's was {self.learning_rate:g})", file=sys.stderr)
            self.model.optimizer.learning_rate.assign(self.config.learning_rate)
        self.state = TrainState(**bundle.config.get("state", {}))
        if reopen and self.state.finished and self.state.stale_epochs < self.config.patience:
            # stopped early under a smaller --patience: a larger one asks for more epochs
            self.state.finished = False
            if self.config.progress and self.is_chief:
                print(f"{self.last_path}: had stopped after {self.state.stale_epochs} epochs without a better "
                      f"validation; going on under --patience {self.config.patience}", file=sys.stderr)
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
        config, state = self.config, self.state
        deadline = None if config.max_minutes is None else time.monotonic() + config.max_minutes * 60.0
        self._guard, self._consecutive_skips = FiniteStepGuard(self.model), 0
        stopped_by_budget = False
        try:
            while state.epoch < config.max_epochs and not state.finished:
                epoch_started = time.monotonic()
                losses, windows, stopped_by_budget = self._run_epoch(make_batch, deadline)
                state.train_seconds += time.monotonic() - epoch_started
                if stopped_by_budget:
                    break
                self._end_epoch(losses, validation, windows, time.monotonic() - epoch_started, on_epoch_end)
        except (KeyboardInterrupt, MelodyError):  # the variables are good (the guard restored them): keep them
            self.save_checkpoint()
            raise
        self.save_checkpoint()
        if stopped_by_budget and config.progress:
            print(f"time budget of {config.max_minutes:g} min reached at epoch {state.epoch + 1}, "
                  f"step {state.step}; continue with --resume", file=sys.stderr)
        return state

    def _over_budget(self, deadline: float | None) -> bool:
        """Whether the time budget is spent (on any worker: every worker must stop at the same step)."""
        over = deadline is not None and time.monotonic() >= deadline
        if self.n_workers > 1 and deadline is not None:
            over = any_worker(self.strategy, over)
        return over

    def _run_epoch(self, make_batch: Callable[[int, int], tuple],
                   deadline: float | None) -> tuple[list[float], int, bool]:
        """The current epoch's remaining steps: (losses of good steps, windows seen, stopped by the budget)."""
        from tqdm import tqdm

        config, state = self.config, self.state
        losses: list[float] = []
        windows = 0
        bar = tqdm(total=config.steps_per_epoch, initial=state.step, desc=f"epoch {state.epoch + 1}",
                   unit="step", disable=not config.progress or not self.is_chief, file=sys.stderr, leave=False)
        while state.step < config.steps_per_epoch:
            if self._over_budget(deadline):
                bar.close()
                return losses, windows, True
            loss, step_windows = self._step(*make_batch(state.epoch, state.step))
            if self._accept(loss, bar):
                losses.append(loss)
            state.step += 1
            state.windows_seen += step_windows
            windows += step_windows
            if self._consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                raise MelodyError(f"training diverged: {self._consecutive_skips} non-finite steps in a row "
                                  f"at epoch {state.epoch + 1}; try a lower --lr")
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        bar.close()
        return losses, windows, False

    def _step(self, x: np.ndarray, targets: np.ndarray, weights: np.ndarray | None) -> tuple[float, int]:
        """One training step: (loss, windows of the global batch)."""
        if self.n_workers == 1:
            loss = float(np.asarray(self.model.train_on_batch(x, targets, sample_weight=weights)).reshape(-1)[0])
            return loss, len(x)
        part = slice(self.worker, None, self.n_workers)  # each worker its share; gradients are averaged
        x, targets = x[part], targets[part]
        weights = None if weights is None else weights[part]
        return self._multi_worker_step(x, targets, weights), len(x) * self.n_workers

    def _accept(self, loss: float, bar) -> bool:
        """Whether the step was good; a bad one was undone by the guard and is counted as skipped."""
        if self._guard.accept(loss):
            self._consecutive_skips = 0
            return True
        self.state.skipped_steps += 1
        self._consecutive_skips += 1
        if self.config.progress:
            bar.write(f"epoch {self.state.epoch + 1}, step {self.state.step + 1}: non-finite loss or weights; "
                      "step undone and skipped", file=sys.stderr)
        return False

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
            scores, self.decoding = validate(self.model, validation, self.mean, self.std, self.config.val_mean)
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
            threshold = row["voicing_threshold"]
            rule = "argmax" if threshold in (None, "") else threshold  # no threshold beat the argmax rule
            print(f"epoch {row['epoch']}: loss {row['train_loss']:.4f}, val OA {row['OA']:.4f} "
                  f"(tuned voicing {row['OA_tuned_voicing']} at {rule}) "
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
