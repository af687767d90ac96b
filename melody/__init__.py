"""Shared building blocks of the vocal melody extractor.

The top-level scripts keep the paper's names (``melodyExtraction_NS.py``,
``model.py``, ``featureExtraction.py`` ...); everything they share lives here,
defined once: the pitch-label definition (:mod:`melody.labels`), user-facing
errors (:mod:`melody.errors`), file I/O and output writers
(:mod:`melody.fileio`, :mod:`melody.writers`), reference readers
(:mod:`melody.readers`), weights bundles (:mod:`melody.bundle`) and
mir_eval scoring (:mod:`melody.metrics`).
"""

__version__ = "0.1.0"
