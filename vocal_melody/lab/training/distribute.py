"""Where training runs: the Keras backend, mixed precision, and tf.distribute strategies (several GPUs,
logical CPUs for tests, or a ``TF_CONFIG`` cluster of workers)."""

from __future__ import annotations

import json
import os

from vocal_melody.errors import MelodyError
from vocal_melody.runtime import import_tensorflow_quietly, keras_backend, require_gpus


def on_jax() -> bool:
    """Whether Keras runs on JAX (the GPU path without TensorFlow)."""
    return keras_backend() == "jax"


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
    cluster = multi_worker_cluster()
    if cluster is not None and (on_jax() or cpu_devices > 1):
        raise MelodyError("TF_CONFIG with several workers trains with TensorFlow's MultiWorkerMirroredStrategy: "
                          "use KERAS_BACKEND=tensorflow and no --cpu-devices")
    if on_jax():
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


def any_worker(strategy, flag: bool) -> bool:
    """True when any worker's ``flag`` is true: every worker must stop at the same step."""
    import tensorflow as tf

    if strategy not in _ANY_WORKER:
        @tf.function
        def total(value):
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda v: v, args=(value,)), axis=None)

        _ANY_WORKER[strategy] = total
    return bool(_ANY_WORKER[strategy](tf.constant(1.0 if flag else 0.0)).numpy() > 0.5)
