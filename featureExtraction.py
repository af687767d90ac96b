"""Audio to model input (8 kHz mono, log-magnitude STFT, 31-frame windows), under the paper's file name.

The definitions are :mod:`vocal_melody.features`; the original's names are importable from here.
"""

from vocal_melody.features import (FEATURE_DEFINITION, FRAME_SECONDS, HOP_LENGTH, N_BINS, N_FFT,  # noqa: F401
                                   SAMPLE_RATE, WINDOW_FRAMES, StreamingSTFT, feature_windows, frame_times,
                                   load_audio, make_windows, n_frames_for, normalize, spectrogram, to_model_rate)
