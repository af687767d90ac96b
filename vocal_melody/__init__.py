"""Vocal melody extraction with the teacher-student CRNN of Kum, Lin, Su and Nam (ISMIR 2020).

    from vocal_melody import extract_melody
    times, f0, confidence = extract_melody("song.mp3")     # f0 in Hz every 10 ms, 0 = no voice

Layers, each importing only from the ones above it (``tests/test_layers.py`` enforces it):

1. base: :mod:`~vocal_melody.errors`, :mod:`~vocal_melody.labels`, :mod:`~vocal_melody.runtime`,
   :mod:`~vocal_melody.fileio`, :mod:`~vocal_melody.cache`, :mod:`~vocal_melody.audio`, :mod:`~vocal_melody.bundle`
2. :mod:`~vocal_melody.features`, :mod:`~vocal_melody.model`
3. :mod:`~vocal_melody.inference` (engines, quantization, decoding, the extractor)
4. :mod:`~vocal_melody.formats` (readers, track matching, writers, plots), :mod:`~vocal_melody.evaluation`
5. :mod:`~vocal_melody.batch`, :mod:`~vocal_melody.ray_batch` (many files, locally or on Ray)
6. :mod:`~vocal_melody.data` (corpora, randAudioAugment, the music pool), :mod:`~vocal_melody.synth`
7. :mod:`~vocal_melody.training` (frames, loop, voicing, teacher-student, training folders)
8. :mod:`~vocal_melody.cli` (one module per command)
"""

from __future__ import annotations

__version__ = "0.2.0"
__all__ = ["DEFAULT_WEIGHTS", "MelodyExtractor", "extract_melody", "__version__"]


def __getattr__(name: str):
    # the public API on first use: importing a base module does not load the inference layer
    if name in ("DEFAULT_WEIGHTS", "MelodyExtractor", "extract_melody"):
        from vocal_melody.inference import extractor

        return getattr(extractor, name)
    raise AttributeError(f"module 'vocal_melody' has no attribute {name!r}")
