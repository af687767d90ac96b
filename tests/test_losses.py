"""The training loss: plain cross-entropy by default, and the balanced auxiliary voicing term, checked against
numpy on both Keras backends the project trains with."""

import os
import subprocess
import sys

import numpy as np
import pytest

from vocal_melody.labels import N_CLASSES, target_distributions


def _numpy_loss(targets: np.ndarray, probs: np.ndarray, voicing_weight: float) -> np.ndarray:
    probs = probs / probs.sum(-1, keepdims=True)
    cross_entropy = -(targets * np.log(np.clip(probs, 1e-7, 1.0))).sum(-1)
    voiced = 1.0 - targets[..., 0]
    p_voiced = np.clip(1.0 - probs[..., 0], 1e-7, 1 - 1e-7)
    w_voiced = voiced.size / (2.0 * max(voiced.sum(), 1.0))
    w_unvoiced = voiced.size / (2.0 * max(voiced.size - voiced.sum(), 1.0))
    bce = -(w_voiced * voiced * np.log(p_voiced) + w_unvoiced * (1 - voiced) * np.log(1 - p_voiced))
    return cross_entropy + voicing_weight * bce


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    classes = np.where(rng.random((4, 31)) < 0.3, 0, rng.integers(1, N_CLASSES, (4, 31)))
    logits = rng.normal(size=(4, 31, N_CLASSES)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return target_distributions(classes, 1.0), probs.astype(np.float32)


def test_voicing_loss_matches_numpy_and_zero_weight_is_plain_cross_entropy():
    import keras

    from vocal_melody.lab.training.losses import melody_loss

    targets, probs = _batch()
    plain = float(melody_loss(0.0)(targets, probs))
    assert plain == pytest.approx(float(keras.losses.CategoricalCrossentropy()(targets, probs)), rel=1e-6)
    assert plain == pytest.approx(_numpy_loss(targets, probs, 0.0).mean(), rel=1e-5)
    for weight in (0.5, 2.0):
        assert float(melody_loss(weight)(targets, probs)) == pytest.approx(
            _numpy_loss(targets, probs, weight).mean(), rel=1e-5)
    with pytest.raises(ValueError):
        melody_loss(-1.0)


def test_voicing_term_balances_the_two_classes():
    """One voiced frame in 124 carries half the voicing term's weight: the rare class counts as much as the other."""
    from vocal_melody.lab.training.losses import melody_loss

    classes = np.zeros((4, 31), np.int64)
    classes[0, 0] = 100
    targets = target_distributions(classes, 0.0)
    confident_silence = np.full((4, 31, N_CLASSES), 1e-6, np.float32)
    confident_silence[..., 0] = 1.0
    voicing_only = float(melody_loss(1.0)(targets, confident_silence)) - float(melody_loss(0.0)(targets,
                                                                                               confident_silence))
    # the one voiced frame's balanced BCE is weight 62 x -log(p_voiced); averaged over 124 frames: about half of it
    p_voiced = 1 - 1.0 / (1.0 + 441e-6)
    assert voicing_only == pytest.approx(62 * -np.log(p_voiced) / 124, rel=1e-3)


def test_voicing_loss_on_jax_backend_matches_numpy(tmp_path):
    pytest.importorskip("jax")
    targets, probs = _batch(1)
    expected = _numpy_loss(targets, probs, 1.5).mean()
    code = ("import numpy as np, sys; from vocal_melody.lab.training.losses import melody_loss; "
            "d = np.load(sys.argv[1]); print(float(melody_loss(1.5)(d['t'], d['p'])))")
    path = tmp_path / "batch.npz"
    np.savez(path, t=targets, p=probs)
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.split()[-1]) == pytest.approx(expected, rel=1e-5)
