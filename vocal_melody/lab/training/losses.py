"""Training losses: the paper's cross-entropy over the 442 classes, optionally with an auxiliary voicing term.

The auxiliary term follows the voice/no-voice branch of the authors' later JDC model without adding a branch
(the architecture stays the paper's): the voicing probability is read off the same softmax, ``1 - p(no voice)``,
and scored by a binary cross-entropy whose two classes are balanced within each batch, so the rarer class
(usually no voice) counts as much as the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras (and TensorFlow) load only when a model is trained
    import keras

EPSILON = 1e-7
"""Probability floor inside the logarithms (Keras's own cross-entropy clips at the same value)."""


def melody_loss(voicing_weight: float = 0.0) -> keras.losses.Loss:
    """The loss of a training run: plain categorical cross-entropy, plus ``voicing_weight`` x balanced voicing BCE."""
    import keras

    if voicing_weight < 0:
        raise ValueError(f"voicing_weight must be >= 0, got {voicing_weight}")
    if voicing_weight == 0:
        return keras.losses.CategoricalCrossentropy()
    return _voicing_loss_class()(voicing_weight)


def _voicing_loss_class():
    import keras
    from keras import ops

    class CrossEntropyWithVoicing(keras.losses.Loss):
        """Per-frame cross-entropy + weight x class-balanced binary cross-entropy on ``1 - p(no voice)``."""

        def __init__(self, voicing_weight: float, name: str = "cross_entropy_with_voicing") -> None:
            super().__init__(name=name)
            self.voicing_weight = float(voicing_weight)

        def call(self, y_true, y_pred):
            y_true = ops.cast(y_true, "float32")
            y_pred = ops.cast(y_pred, "float32")
            y_pred = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
            cross_entropy = -ops.sum(y_true * ops.log(ops.clip(y_pred, EPSILON, 1.0)), axis=-1)
            voiced = 1.0 - y_true[..., 0]
            p_voiced = ops.clip(1.0 - y_pred[..., 0], EPSILON, 1.0 - EPSILON)
            frames = ops.cast(ops.size(voiced), "float32")
            n_voiced = ops.sum(voiced)
            weight_voiced = frames / (2.0 * ops.maximum(n_voiced, 1.0))
            weight_unvoiced = frames / (2.0 * ops.maximum(frames - n_voiced, 1.0))
            voicing = -(weight_voiced * voiced * ops.log(p_voiced)
                        + weight_unvoiced * (1.0 - voiced) * ops.log(1.0 - p_voiced))
            return cross_entropy + self.voicing_weight * voicing

        def get_config(self) -> dict:
            return {"voicing_weight": self.voicing_weight, "name": self.name}

    return CrossEntropyWithVoicing
