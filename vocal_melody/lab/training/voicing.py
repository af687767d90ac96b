"""Validation: whole-track activations, mir_eval scores, and the voicing rule chosen on validation data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vocal_melody import features
from vocal_melody.bundle import Decoding, read_bundle, save_bundle
from vocal_melody.evaluation import defined_scores, group_mean_scores, mean_scores, melody_scores
from vocal_melody.inference.decoding import decode
from vocal_melody.inference.engines import in_batches
from vocal_melody.inference.extractor import MelodyExtractor
from vocal_melody.labels import N_CLASSES, class_to_f0
from vocal_melody.lab.training.distribute import on_jax
from vocal_melody.lab.training.frames import FrameData


GRAPH_BATCH = 32
"""Windows per compiled call in validation: eager Keras calls of 64 held about 100 MB per window and ran slower
(in bf16, 26 against 36 windows/s on two AVX-512 cores)."""


def window_predictor(model, batch_size: int = GRAPH_BATCH):
    """A function from a batch of windows to their softmax, compiled once for the model (its weights read at call
    time, so one predictor serves a whole validation)."""
    if on_jax():  # compiled once for one batch shape; eager calls would run op by op
        def call(batch: np.ndarray) -> np.ndarray:
            padded = np.concatenate([batch, np.zeros((batch_size - len(batch), *batch.shape[1:]), batch.dtype)])
            return np.asarray(model.predict_on_batch(padded), dtype=np.float32)[:len(batch)]
        return call
    import tensorflow as tf

    graph = tf.function(lambda batch: model(batch, training=False),
                        input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
    return lambda batch: np.asarray(graph(np.asarray(batch, np.float32)), dtype=np.float32)


def predict_activations(model, spec: np.ndarray, mean: np.ndarray, std: np.ndarray,
                        batch_size: int = GRAPH_BATCH, predictor=None) -> np.ndarray:
    """Per-frame softmax (n_frames, 442) of a whole track (``predictor`` from :func:`window_predictor`, built
    here when not given)."""
    windows = features.normalize(features.make_windows(np.asarray(spec, dtype=np.float32)), mean, std)[..., None]
    call = predictor or window_predictor(model, batch_size)
    return in_batches(call, windows, batch_size).reshape(-1, N_CLASSES)[:len(spec)]


VAL_MEANS = ("tracks", "groups")
"""How validation scores are averaged: over tracks (the paper's), or over groups (each validation manifest's mean
over its tracks, then the mean of those: a small group of real singing weighs as much as a large synthesized one)."""


def _averager(data: FrameData, val_mean: str):
    if val_mean == "groups":
        groups = [track.group for track in data.tracks]
        return lambda scores: group_mean_scores(scores, groups)
    return mean_scores


def validate(model, data: FrameData, mean: np.ndarray, std: np.ndarray,
             val_mean: str = "tracks") -> tuple[dict[str, float], dict]:
    """Mean mir_eval scores over whole validation tracks (the paper's argmax decoding; ``val_mean`` as in
    :data:`VAL_MEANS`), and the voicing rule that would score best (see :func:`best_voicing`)."""
    predictor = window_predictor(model)
    activations = [predict_activations(model, spec, mean, std, predictor=predictor) for spec in data.specs]
    references = _references(data, activations)
    scores = []
    for reference, probabilities in zip(references, activations):
        estimate = class_to_f0(np.argmax(probabilities, axis=1))
        times = features.frame_times(len(reference))
        scores.append(defined_scores(melody_scores(times, reference, times, estimate), reference))
    average = _averager(data, val_mean)
    return average(scores), best_voicing(activations, references, average)


def selection_oa(scores: dict[str, float], decoding: dict) -> float:
    """The validation OA that ranks epochs: under the voicing rule the bundle will be decoded with.

    The CLI decodes with the tuned threshold by default, so that is the OA that matters; a noisy
    student is less sure of its voicing than its teacher, and the argmax rule undersells it.
    """
    return float(decoding.get("val_OA_tuned", scores["OA"]))


VOICING_CANDIDATES = tuple(round(float(v), 2) for v in np.arange(0.20, 0.96, 0.05))
"""Thresholds on 1 - p(no voice) tried on validation data (the paper's argmax is always tried too)."""


def best_voicing(activations: list[np.ndarray], references: list[np.ndarray], average=mean_scores) -> dict:
    """The voicing rule with the best mean OA (``average`` of the per-track scores): the paper's argmax (kept on
    ties) or a threshold on 1 - p(no voice)."""
    def mean_oa(threshold):
        scores = []
        for reference, probabilities in zip(references, activations):
            f0, _ = decode(probabilities, voicing_threshold=threshold)
            times = features.frame_times(len(f0))
            scores.append(melody_scores(times, reference, times, f0))
        return average(scores)["OA"]

    results = {None: mean_oa(None)}
    for threshold in VOICING_CANDIDATES:
        results[threshold] = mean_oa(threshold)
    best = max(results, key=lambda k: (results[k], k is None))
    return Decoding(best, round(results[None], 4), round(results[best], 4)).to_config()


def tune_voicing(bundle_path: Path, validation: FrameData, progress: bool = False, val_mean: str = "tracks") -> dict:
    """Choose the voicing rule on validation data for an existing bundle and store it in the bundle."""
    extractor = MelodyExtractor(bundle_path)
    activations = [extractor.activations_from_spectrogram(spec) for spec in validation.specs]
    decoding = best_voicing(activations, _references(validation, activations), _averager(validation, val_mean))
    bundle = read_bundle(bundle_path)
    save_bundle(bundle_path, bundle.weights, bundle.mean, bundle.std, dict(bundle.config, decoding=decoding),
                bundle.training_log, extra=bundle.extra)
    if progress:
        print(f"voicing: {decoding}", file=sys.stderr)
    return decoding


def _references(data: FrameData, activations: list[np.ndarray]) -> list[np.ndarray]:
    return [np.pad(t.f0, (0, max(0, len(a) - len(t.f0))))[:len(a)] for t, a in zip(data.tracks, activations)]
