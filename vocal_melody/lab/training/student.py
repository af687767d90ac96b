"""The paper's teacher-student setups: who hears augmented audio, the cached views and pseudo labels of
one iteration, and the batches that mix labeled and pseudo-labeled windows.

Setups (who sees randAudioAugment-ed audio):

- ``bts`` Basic Teacher-Student: neither; the teacher labels clean audio, the student learns from clean audio.
- ``nts`` Noisy Teacher-Student: both; the teacher labels the augmented audio the student learns from.
- ``ns`` Noisy Student: the teacher labels clean audio, the student learns from augmented audio.

Pseudo labels are hard, computed once per view and cached: the teacher's argmax per frame (the paper's rule),
or its most probable pitch where its voicing probability ``1 - p(no voice)`` reaches a threshold and no voice
elsewhere: ``pseudo_voicing="tuned"`` takes the threshold stored in the teacher's bundle (the rule the teacher
was chosen under), a number is the threshold itself.

Soft targets (knowledge distillation, ``soft_weight > 0``): the teacher's whole output distribution per frame,
of the view the teacher hears, is cached too, and each frame's target becomes ``soft_weight`` x that distribution
+ ``(1 - soft_weight)`` x the hard label's (ground truth or pseudo label), on labeled and unlabeled windows alike.
The six effects of randAudioAugment keep the timeline, so the clean view's distribution fits the augmented one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vocal_melody import features
from vocal_melody.cache import ArrayCache, cache_key, file_digest
from vocal_melody.lab import rand_audio_augment as augment
from vocal_melody.lab.corpora.datasets import FeatureCache, frame_classes
from vocal_melody.inference.decoding import decoded_classes
from vocal_melody.inference.extractor import MelodyExtractor
from vocal_melody.labels import target_distributions
from vocal_melody.lab.training.frames import FrameData, frame_weights, sample_windows


@dataclass(frozen=True)
class Setup:
    """Which side of a teacher-student pair hears randAudioAugment-ed audio (the paper's three setups)."""

    teacher_augmented: bool
    student_augmented: bool


SETUPS = {"bts": Setup(teacher_augmented=False, student_augmented=False),   # Basic Teacher-Student
          "nts": Setup(teacher_augmented=True, student_augmented=True),     # Noisy Teacher-Student
          "ns": Setup(teacher_augmented=False, student_augmented=True)}     # Noisy Student


def load_teacher(path: str | os.PathLike) -> MelodyExtractor:
    """A teacher bundle, loaded for pseudo labelling."""
    return MelodyExtractor(path)


class StudentData:
    """Features (clean or augmented) and pseudo labels of one iteration, all cached."""

    def __init__(self, cache_dir: Path, k: int, seed: int, original_rate_quirk: bool, progress: bool,
                 pseudo_voicing: str | float = "argmax") -> None:
        is_threshold = isinstance(pseudo_voicing, (int, float)) and not isinstance(pseudo_voicing, bool)
        if pseudo_voicing not in ("argmax", "tuned") and not (is_threshold and 0.0 <= pseudo_voicing <= 1.0):
            raise ValueError(f"pseudo_voicing must be argmax, tuned or a threshold in [0, 1], got {pseudo_voicing!r}")
        self.features = FeatureCache.under(cache_dir)
        self.pseudo = ArrayCache(cache_dir / "pseudo")
        self.soft = ArrayCache(cache_dir / "soft")
        self.k, self.seed, self.quirk, self.progress = k, seed, original_rate_quirk, progress
        self.pseudo_voicing = pseudo_voicing

    def chains(self, track) -> list[tuple[str, list]]:
        """``(description, randAudioAugment chain)`` of each augmented view of a track, ``--k`` of them."""
        track_id = file_digest(track.audio)
        chains = [augment.chain_for(track_id, self.seed, index) for index in range(self.k)]
        return [(augment.describe(chain) + (" quirk" if self.quirk else ""), chain) for chain in chains]

    def augmented_audio(self, samples: np.ndarray, chain: list) -> np.ndarray:
        """8 kHz samples through one chain, as the student hears them."""
        return augment.apply_chain(samples, features.SAMPLE_RATE, chain, self.quirk)

    def variants(self, track, augmented: bool) -> list[tuple[str, np.ndarray]]:
        """``(augmentation description, spectrogram)`` of each view of a track the student trains on."""
        if not augmented:
            return [("", self.features.spectrogram(track.audio))]
        views = []
        for description, chain in self.chains(track):
            def compute(path, chain=chain):
                return self.augmented_audio(features.load_audio(path), chain)

            views.append((description, self.features.spectrogram(track.audio, description, compute)))
        return views

    def pseudo_labels(self, teacher, teacher_digest: str, track, description: str, spec: np.ndarray) -> np.ndarray:
        """The teacher's class per frame for one view of a track (see the module), cached by teacher, rule and view."""
        threshold = teacher.voicing_threshold(self.pseudo_voicing)
        parts = ("pseudo", teacher_digest, self.features.key(track.audio, description))
        # argmax labels keep their old key, so caches made before the option stay valid
        key = cache_key(*parts) if threshold is None else cache_key(*parts, {"voicing_threshold": threshold})
        entry = self.pseudo.load(key)
        if entry is not None:
            return entry["classes"]
        activations = teacher.activations_from_spectrogram(spec)
        classes = decoded_classes(activations, threshold).astype(np.int16)
        self.pseudo.save(key, {"classes": classes})
        return classes

    def teacher_distributions(self, teacher, teacher_digest: str, track, description: str,
                              spec: np.ndarray | Callable[[], np.ndarray]) -> np.ndarray:
        """The teacher's softmax per frame (n_frames, 442) of one view of a track, float16, cached by teacher, view
        (``spec`` may be a function giving the view's spectrogram, read only when the cache lacks the entry)."""
        key = cache_key("soft", teacher_digest, self.features.key(track.audio, description))
        entry = self.soft.load(key)
        if entry is not None:
            return entry["distributions"]
        spec = spec() if callable(spec) else spec
        distributions = teacher.activations_from_spectrogram(spec).astype(np.float16)  # half the memory; 1e-3 exact
        self.soft.save(key, {"distributions": distributions})
        return distributions


@dataclass(frozen=True)
class SoftTeacher:
    """The teacher whose distributions become soft targets, and the setup that says which view it hears."""

    extractor: MelodyExtractor
    digest: str
    setup: str

    def views(self, store: StudentData, track, student_views: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
        """The teacher's distributions for each of the student's views (the clean view's when it hears clean audio)."""
        if not SETUPS[self.setup].teacher_augmented:
            clean = store.teacher_distributions(self.extractor, self.digest, track, "",
                                                lambda: store.features.spectrogram(track.audio))
            return [clean] * len(student_views)
        return [store.teacher_distributions(self.extractor, self.digest, track, description, spec)
                for description, spec in student_views]


def build_unlabeled(tracks: list, store: StudentData, teacher: MelodyExtractor, teacher_digest: str,
                    setup: str, soft: bool = False) -> FrameData:
    """FrameData of the unlabeled views with pseudo labels as classes (and, with ``soft``, the teacher's
    distributions)."""
    from tqdm import tqdm

    teacher_augmented, student_augmented = SETUPS[setup].teacher_augmented, SETUPS[setup].student_augmented
    soft_teacher = SoftTeacher(teacher, teacher_digest, setup) if soft else None
    views, specs, classes, distributions = [], [], [], []
    for track in tqdm(tracks, desc="pseudo labels", unit="track", disable=not store.progress, file=sys.stderr):
        clean_labels = None
        if not teacher_augmented:
            clean_spec = store.features.spectrogram(track.audio)
            clean_labels = store.pseudo_labels(teacher, teacher_digest, track, "", clean_spec)
        track_views = store.variants(track, student_augmented)
        for description, spec in track_views:
            labels = clean_labels if clean_labels is not None else store.pseudo_labels(
                teacher, teacher_digest, track, description, spec)
            views.append(track)
            specs.append(spec)
            classes.append(labels[:len(spec)])
        if soft_teacher is not None:
            distributions += soft_teacher.views(store, track, track_views)
    return FrameData(views, specs, classes, _fitted(distributions, specs) if soft else None)


def build_labeled(tracks: list, store: StudentData, augmented: bool,
                  soft_teacher: SoftTeacher | None = None) -> FrameData:
    """FrameData of the labeled views (augmented for the noisy setups' students); with ``soft_teacher``, its
    distributions of each view too."""
    from tqdm import tqdm

    views, specs, classes, distributions = [], [], [], []
    for track in tqdm(tracks, desc="labeled features", unit="track", disable=not store.progress, file=sys.stderr):
        track_views = store.variants(track, augmented)
        for _, spec in track_views:
            views.append(track)
            specs.append(spec)
            classes.append(frame_classes(track.f0, len(spec)))
        if soft_teacher is not None:
            distributions += soft_teacher.views(store, track, track_views)
    return FrameData(views, specs, classes, _fitted(distributions, specs) if soft_teacher is not None else None)


def _fitted(distributions: list[np.ndarray], specs: list[np.ndarray]) -> list[np.ndarray]:
    """Each view's distributions cut to its frames (a view never has more frames than the clean audio)."""
    return [d[:len(spec)] for d, spec in zip(distributions, specs)]


def mixed_batch(labeled: FrameData | None, unlabeled: FrameData, mean: np.ndarray, std: np.ndarray, batch_size: int,
                ratio: tuple[int, int], sigma: float, unlabeled_weight: float, seed: int,
                unvoiced_weight: float = 1.0, soft_weight: float = 0.0) -> Callable[[int, int], tuple]:
    """``make_batch``: labeled and pseudo-labeled windows in one batch, weighted per sample; with ``soft_weight``,
    targets blended with the teacher's distributions (see the module; both FrameData must hold them)."""
    if not 0.0 <= soft_weight <= 1.0:
        raise ValueError(f"soft_weight must be in [0, 1], got {soft_weight}")
    if soft_weight and any(data is not None and data.soft is None for data in (labeled, unlabeled)):
        raise ValueError("soft_weight needs the teacher's distributions in the labeled and unlabeled data")
    n_labeled = int(round(batch_size * ratio[0] / (ratio[0] + ratio[1]))) if labeled is not None else 0
    n_unlabeled = batch_size - n_labeled

    def make_batch(epoch: int, step: int):
        rng = np.random.default_rng([seed, epoch, step])
        xs, ys, softs = [], [], []
        for data, n in ((labeled, n_labeled), (unlabeled, n_unlabeled)):
            if not n:
                continue
            if soft_weight:
                x, y, soft = sample_windows(data, n, rng, with_soft=True)
                softs.append(soft)
            else:
                x, y = sample_windows(data, n, rng)
            xs.append(x)
            ys.append(y)
        window_weights = np.concatenate([np.ones(n_labeled, np.float32),
                                         np.full(n_unlabeled, unlabeled_weight, np.float32)])
        classes = np.concatenate(ys)
        weights = frame_weights(classes, window_weights, unvoiced_weight)
        if weights is None:  # Keras needs the same inputs on every step
            weights = np.ones(classes.shape, np.float32)
        inputs = features.normalize(np.concatenate(xs), mean, std)[..., None]
        targets = target_distributions(classes, sigma)
        if soft_weight:
            targets = (1.0 - soft_weight) * targets + soft_weight * np.concatenate(softs).astype(np.float32)
        return inputs, targets, weights

    return make_batch


def view_audio(track, store: StudentData, augmented: bool) -> list[np.ndarray]:
    """8 kHz samples of each view :meth:`StudentData.variants` trains on (same chains, same order)."""
    samples = features.load_audio(track.audio)
    if not augmented:
        return [samples]
    return [store.augmented_audio(samples, chain) for _, chain in store.chains(track)]
