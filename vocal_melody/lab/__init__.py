"""The lab: what makes and trains models, beside the extraction product that users install.

The product (``vocal_melody`` outside ``lab``: audio, features, model, engines, decoding, formats, evaluation,
batches, the extract and evaluate commands) never imports the lab (``tests/test_layers.py``). The lab builds on it:

- :mod:`~vocal_melody.lab.corpora`: readers of training corpora (manifests, MIR-1K, SSVD), the feature cache,
  the Debian music pool and its screening list;
- :mod:`~vocal_melody.lab.rand_audio_augment`: the paper's randAudioAugment (six sox effects);
- :mod:`~vocal_melody.lab.synth`: labeled data by synthesis (WORLD, compose, analysis-synthesis, real-corpus mixes);
- :mod:`~vocal_melody.lab.training`: frames, the loop, losses, devices, validation, teacher-student, folders;
- :mod:`~vocal_melody.lab.cli`: the lab's commands (synth_testset, augment, train_teacher, train_student).

Its dependencies are extras: ``training`` (TensorFlow, sox), ``synthesis`` (WORLD, MIDI), ``jax``, ``ray``.
"""
