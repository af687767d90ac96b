"""The paper's CRNN (Kum et al., ISMIR 2020) in Keras 3.

Input: a window of 31 normalised log-magnitude frames, shape (31, 513, 1).
Output: per-frame softmax over the 442 pitch classes of :mod:`vocal_melody.labels`,
shape (31, 442).

Four ResNet blocks (64, 128, 192, 256 filters), each::

    conv1x1 -> BN                                  (= shortcut)
    -> LeakyReLU(0.01) -> conv3x3 -> BN -> LReLU -> conv3x3 -> BN -> LReLU
    -> conv1x1 -> BN -> + shortcut -> LReLU -> max-pool (1, 4) over frequency

Convolutions are bias-free, he_normal, L2 1e-5. Then dropout 0.5, reshape to
(31, 512), BiLSTM 256 (dropout 0.3, recurrent dropout 0.3) and a per-frame
dense softmax. 4,228,602 parameters at the default width.
"""

from __future__ import annotations

import numpy as np

from vocal_melody.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
from keras import layers, regularizers  # noqa: E402

from vocal_melody import features  # noqa: E402
from vocal_melody.bundle import save_bundle  # noqa: E402
from vocal_melody.errors import MelodyError  # noqa: E402
from vocal_melody.features import N_BINS, WINDOW_FRAMES  # noqa: E402
from vocal_melody.labels import N_CLASSES  # noqa: E402

PAPER_FILTERS = (64, 128, 192, 256)
PAPER_LSTM_UNITS = 256
CAPACITIES = {"full": (PAPER_FILTERS, PAPER_LSTM_UNITS),
              "small": ((32, 64, 96, 128), 128),
              "tiny": ((16, 32, 48, 64), 64)}
"""(filters, LSTM units) of each model capacity (``--model``; their bundles: :data:`vocal_melody.bundle.MODELS`):
the paper's widths, half and a quarter of them."""
L2_WEIGHT = 1e-5
LEAKY_SLOPE = 0.01
POOL_FREQUENCY = 4
BLOCK_PREFIX = "block"
"""Names of the ResNet blocks' layers start with it (``--freeze-backbone`` finds them so)."""


def _conv(filters: int, kernel: int, name: str) -> layers.Conv2D:
    return layers.Conv2D(filters, (kernel, kernel), padding="same", use_bias=False,
                         kernel_initializer="he_normal",
                         kernel_regularizer=regularizers.L2(L2_WEIGHT), name=name)


def _resnet_block(x, filters: int, index: int, synchronized: bool = False):
    name = f"{BLOCK_PREFIX}{index}"

    def norm(suffix: str) -> layers.BatchNormalization:
        return layers.BatchNormalization(synchronized=synchronized, name=f"{name}_{suffix}")

    shortcut = norm("bn0")(_conv(filters, 1, f"{name}_conv0")(x))
    y = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_act0")(shortcut)
    y = norm("bn1")(_conv(filters, 3, f"{name}_conv1")(y))
    y = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_act1")(y)
    y = norm("bn2")(_conv(filters, 3, f"{name}_conv2")(y))
    y = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_act2")(y)
    y = norm("bn3")(_conv(filters, 1, f"{name}_conv3")(y))
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    y = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_act3")(y)
    return layers.MaxPooling2D((1, POOL_FREQUENCY), name=f"{name}_pool")(y)


def build_model(filters: tuple[int, ...] = PAPER_FILTERS,
                lstm_units: int = PAPER_LSTM_UNITS,
                n_classes: int = N_CLASSES, dropout: bool = True,
                synchronized_batchnorm: bool = False) -> keras.Model:
    """Build the CRNN; the defaults are the paper's model.

    ``filters`` and ``lstm_units`` may be reduced for experiments and tests
    (e.g. ``filters=(8, 8, 8, 8), lstm_units=8``); ``dropout=False`` removes
    the dropout (an ablation, and what makes a distributed run comparable
    step for step with a single one). ``synchronized_batchnorm`` computes
    batch statistics over all replicas of a tf.distribute strategy, so that
    workers sharing a batch train what one worker would (same weights). The
    softmax is computed in float32 even under a mixed-precision policy.
    """
    rate, lstm_rate = (0.5, 0.3) if dropout else (0.0, 0.0)
    inputs = keras.Input(shape=(WINDOW_FRAMES, N_BINS, 1), name="spectrogram")
    x = inputs
    frequency = N_BINS
    for index, n_filters in enumerate(filters, start=1):
        x = _resnet_block(x, int(n_filters), index, synchronized_batchnorm)
        frequency //= POOL_FREQUENCY
    x = layers.Dropout(rate, name="dropout")(x)
    x = layers.Reshape((WINDOW_FRAMES, frequency * int(filters[-1])), name="reshape")(x)
    x = layers.Bidirectional(
        layers.LSTM(int(lstm_units), return_sequences=True, dropout=lstm_rate, recurrent_dropout=lstm_rate),
        name="bilstm")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="pitch")(x)
    return keras.Model(inputs, outputs, name="crnn_melody")


def freeze_resnet_blocks(model: keras.Model) -> None:
    """Keep the four ResNet blocks (convolutions and batch statistics) as they are: only the BiLSTM and the
    output layer train (``--freeze-backbone``). Frozen batch normalisation runs in inference mode."""
    for layer in model.layers:
        if layer.name.startswith(BLOCK_PREFIX):
            layer.trainable = False


def model_config(filters: tuple[int, ...] = PAPER_FILTERS, lstm_units: int = PAPER_LSTM_UNITS,
                 dropout: bool = True) -> dict:
    """The keyword arguments of :func:`build_model`, as stored in a weights bundle (``dropout`` only when off)."""
    config = {"filters": [int(f) for f in filters], "lstm_units": int(lstm_units)}
    return config if dropout else {**config, "dropout": False}


def model_from_bundle(bundle) -> keras.Model:
    """Build the model a :class:`vocal_melody.bundle.Bundle` describes and load its weights."""
    try:
        net = build_model(**bundle.model_args)
    except (TypeError, ValueError) as error:
        raise MelodyError(f"{bundle.path}: invalid model configuration {bundle.model_args}: {error}") from error
    expected = [tuple(w.shape) for w in net.get_weights()]
    found = [tuple(w.shape) for w in bundle.weights]
    if expected != found:
        raise MelodyError(f"{bundle.path}: weights do not fit the model they claim to be "
                          f"({len(found)} arrays, {len(expected)} expected)")
    net.set_weights(bundle.weights)
    return net


def save_random_bundle(path, model_args: dict, seed: int = 0):
    """A bundle with randomly initialised weights (for speed measurements and tests: the CLI cannot tell)."""
    keras.utils.set_random_seed(seed)
    net = build_model(**model_args)
    mean = np.full((features.WINDOW_FRAMES, features.N_BINS), -40.0, np.float32)
    std = np.full_like(mean, 20.0)
    return save_bundle(path, net.get_weights(), mean, std, {"model": dict(model_args),
                                                             "features": features.FEATURE_DEFINITION})
