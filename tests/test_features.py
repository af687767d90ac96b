import subprocess

import numpy as np
import pytest
from conftest import harmonic_tone, write_wav

from vocal_melody import features as fe
from vocal_melody import labels
from vocal_melody.errors import MelodyError

BIN_HZ = fe.SAMPLE_RATE / fe.N_FFT


def spectral_peak_hz(audio: np.ndarray) -> float:
    """Frequency of the strongest bin of the mean magnitude over the middle frames."""
    magnitude = fe.magnitude_spectrogram(audio)
    middle = magnitude[len(magnitude) // 4: 3 * len(magnitude) // 4].mean(axis=0)
    k = int(np.argmax(middle))
    # parabolic interpolation on the log magnitude: sub-bin precision
    a, b, c = np.log(middle[k - 1: k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * BIN_HZ


@pytest.mark.parametrize("pitch_class", [57, 233, 361])
def test_known_pitch_tone_through_full_feature_path(tmp_path, pitch_class):
    """A tone at the pitch of a class, written as stereo 44.1 kHz, shows its f0 and harmonics."""
    f0 = float(labels.class_to_f0(np.array([pitch_class]))[0])
    tone = harmonic_tone(f0, 1.0, 44100, n_harmonics=4)
    path = write_wav(tmp_path / "tone.wav", np.stack([tone, tone], axis=1), 44100)
    audio = fe.load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (8000,)
    assert spectral_peak_hz(audio) == pytest.approx(f0, rel=0.01)
    assert labels.f0_to_class(np.array([spectral_peak_hz(audio)]))[0] == pytest.approx(pitch_class, abs=1)
    spec = fe.spectrogram(audio)
    middle = spec[40:60].mean(axis=0)
    for harmonic in range(1, 4):
        if harmonic * f0 < 3900:
            k = int(round(harmonic * f0 / BIN_HZ))
            assert middle[k - 1: k + 2].max() > np.median(middle) + 30  # a clear harmonic peak


@pytest.mark.heavy
def test_spectrogram_matches_librosa():
    librosa = pytest.importorskip("librosa")
    audio = np.random.default_rng(0).standard_normal(4321).astype(np.float32)
    expected = librosa.power_to_db(np.abs(librosa.stft(
        audio, n_fft=1024, hop_length=80, win_length=1024, pad_mode="reflect")), ref=np.max).T
    np.testing.assert_allclose(fe.spectrogram(audio), expected, atol=1e-3)


def test_frames_shapes_and_times():
    audio = np.zeros(8000 * 3 + 57, np.float32)
    audio[::7] = 0.1
    spec = fe.spectrogram(audio)
    assert spec.shape == (1 + audio.size // 80, 513) == (301, 513)
    assert spec.dtype == np.float32
    assert spec.max() == 0.0 and spec.min() >= -80.0
    windows, n_frames = fe.feature_windows(audio)
    assert windows.shape == (10, 31, 513) and n_frames == 301
    np.testing.assert_array_equal(windows.reshape(-1, 513)[:301], spec)
    np.testing.assert_allclose(fe.frame_times(3), [0.0, 0.01, 0.02])


def test_last_window_is_padded_with_the_minimum_not_zero_db():
    spec = np.random.default_rng(1).uniform(-70, 0, (40, 513)).astype(np.float32)
    windows = fe.make_windows(spec)
    assert windows.shape == (2, 31, 513)
    assert np.all(windows[1, 9:] == spec.min())


def test_shorter_than_one_window(tmp_path):
    path = write_wav(tmp_path / "short.wav", harmonic_tone(300, 0.1, 16000), 16000)
    audio = fe.load_audio(path)
    windows, n_frames = fe.feature_windows(audio)
    assert audio.size == 800 and n_frames == 11 and windows.shape == (1, 31, 513)


def test_audio_shorter_than_one_hop_gives_one_frame():
    windows, n_frames = fe.feature_windows(np.full(30, 0.1, np.float32))
    assert n_frames == 1 and windows.shape == (1, 31, 513)


def test_normalize_uses_training_statistics():
    windows = np.full((2, 31, 513), -20.0, np.float32)
    mean = np.full((31, 513), -40.0, np.float32)
    std = np.full((31, 513), 10.0, np.float32)
    np.testing.assert_allclose(fe.normalize(windows, mean, std), 20.0 / (10.0 + 1e-4), rtol=1e-6)


def test_mp3_input(tmp_path):
    wav = write_wav(tmp_path / "tone.wav", harmonic_tone(220.0, 2.0, 44100), 44100)
    mp3 = tmp_path / "tone.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-b:a", "128k", str(mp3)], check=True)
    audio = fe.load_audio(mp3)
    assert abs(audio.size - 16000) < 0.1 * 16000  # encoder delay/padding only
    assert spectral_peak_hz(audio) == pytest.approx(220.0, rel=0.01)


def test_stem_mp4_takes_the_first_stream(tmp_path):
    """A multi-stream MP4: stream 0 (the mix) is read by default, others on request."""
    mix = write_wav(tmp_path / "mix.wav", harmonic_tone(220.0, 2.0, 44100), 44100)
    vocal = write_wav(tmp_path / "vocal.wav", harmonic_tone(330.0, 2.0, 44100), 44100)
    mp4 = tmp_path / "song.stem.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(mix), "-i", str(vocal), "-map", "0:a", "-map", "1:a",
                    "-c:a", "aac", "-b:a", "128k", str(mp4)], check=True)
    assert spectral_peak_hz(fe.load_audio(mp4)) == pytest.approx(220.0, rel=0.01)
    assert spectral_peak_hz(fe.load_audio(mp4, stream=1)) == pytest.approx(330.0, rel=0.01)


def test_channels_are_averaged():
    left = np.full((800, 1), 0.5, np.float32)
    stereo = np.concatenate([left, -left * 0.5], axis=1)
    np.testing.assert_allclose(fe.to_model_rate(stereo, 8000), 0.125)


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    (lambda p: (p.write_text("this is not audio\n" * 50), p)[1], "not a readable audio file"),
])
def test_bad_files_raise_one_line_errors(tmp_path, make, message):
    path = make(tmp_path / "bad.wav")
    with pytest.raises(MelodyError, match=message):
        fe.load_audio(path)


def test_bad_arrays():
    with pytest.raises(MelodyError, match="no samples"):
        fe.to_model_rate(np.zeros(0), 8000)
    with pytest.raises(MelodyError, match="NaN"):
        fe.to_model_rate(np.array([0.0, np.nan]), 8000)
    with pytest.raises(MelodyError, match="too low"):
        fe.to_model_rate(np.zeros(10), 1)
