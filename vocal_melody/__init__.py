"""Vocal melody extraction with the teacher-student CRNN of Kum, Lin, Su and Nam (ISMIR 2020).

    from vocal_melody import extract_melody
    times, f0, confidence = extract_melody("song.mp3")     # f0 in Hz every 10 ms, 0 = no voice

Two houses. The product, what users install and run, in layers that import only from the ones below:

1. base: :mod:`~vocal_melody.errors`, :mod:`~vocal_melody.labels`, :mod:`~vocal_melody.runtime` (devices too),
   :mod:`~vocal_melody.fileio`, :mod:`~vocal_melody.cache`, :mod:`~vocal_melody.audio`, :mod:`~vocal_melody.bundle`
2. :mod:`~vocal_melody.features`, :mod:`~vocal_melody.model`
3. :mod:`~vocal_melody.inference` (engines, quantization, decoding, the extractor)
4. :mod:`~vocal_melody.formats` (readers, track matching, writers, plots), :mod:`~vocal_melody.evaluation`
5. :mod:`~vocal_melody.batch`, :mod:`~vocal_melody.ray_batch` (many files, locally or on Ray)
6. :mod:`~vocal_melody.extraction` (the extraction command as a function of an :class:`ExtractionRequest`)
7. :mod:`~vocal_melody.cli` (extract, evaluate)

and the lab above it, which the product never imports (:mod:`vocal_melody.lab`: corpora, randAudioAugment,
synthesis, training, their commands). ``tests/test_layers.py`` enforces both.
"""

from __future__ import annotations

__version__ = "0.2.0"
__all__ = ["DEFAULT_WEIGHTS", "MelodyExtractor", "extract_melody", "shipped_models", "__version__"]


def __getattr__(name: str):
    # the public API on first use: importing a base module does not load the inference layer
    if name in ("DEFAULT_WEIGHTS", "MelodyExtractor", "extract_melody", "shipped_models"):
        from vocal_melody.inference import extractor

        return getattr(extractor, name)
    raise AttributeError(f"module 'vocal_melody' has no attribute {name!r}")
