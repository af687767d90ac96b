"""Synthesized labeled data: WORLD analysis-synthesis, singing, melodies, soundfonts, anasyn, compose, the demo."""
