import numpy as np
import pytest

from vocal_melody import labels


def test_constants_match_the_paper():
    assert labels.N_CLASSES == 442
    assert labels.MIDI_MAX == 95.0
    assert labels.class_to_midi(np.array([1, 441])).tolist() == [40.0, 95.0]


def test_round_trip_over_every_class():
    classes = np.arange(labels.N_CLASSES)
    assert np.array_equal(labels.f0_to_class(labels.class_to_f0(classes)), classes)


def test_known_pitches():
    # A4 = MIDI 69 = class (69 - 40) * 8 + 1; E2 (82.41 Hz) is class 1, B6 class 441
    assert labels.f0_to_class(np.array([440.0, 82.4069, 1975.533])).tolist() == [233, 1, 441]
    assert labels.class_to_f0(np.array([233]))[0] == pytest.approx(440.0)


def test_nearest_bin_and_quantisation_error():
    f0 = np.geomspace(83.0, 1970.0, 5000)
    recovered = labels.class_to_f0(labels.f0_to_class(f0))
    cents = 1200 * np.abs(np.log2(recovered / f0))
    assert cents.max() <= labels.CENTS_PER_BIN / 2 + 1e-6


def test_unvoiced_and_out_of_range_are_class_zero():
    f0 = np.array([0.0, -5.0, np.nan, 60.0, 3000.0, 82.41 * 2 ** (-0.1 / 12)])
    assert labels.f0_to_class(f0).tolist() == [0, 0, 0, 0, 0, 0]
    # a pitch within half a bin below the lowest class still maps to class 1
    assert labels.f0_to_class(np.array([82.4069 * 2 ** (-0.05 / 12)]))[0] == 1


@pytest.mark.parametrize("sigma", [0.0, 1.0, 3.0])
def test_targets_sum_to_one_and_peak_at_the_class(sigma):
    classes = np.array([0, 1, 200, 441])
    targets = labels.target_distributions(classes, sigma)
    assert targets.shape == (4, 442)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-5)
    assert np.argmax(targets, axis=1).tolist() == classes.tolist()
    assert targets[0, 0] == 1.0  # unvoiced stays one-hot
    assert targets[1:, 0].max() == 0.0  # pitch mass never leaks into "no voice"


def test_gaussian_width():
    targets = labels.target_distributions(np.array([200]), sigma=2.0)[0]
    assert targets[202] / targets[200] == pytest.approx(np.exp(-0.5), rel=1e-5)
    assert labels.target_distributions(np.array([200]), sigma=0)[0, 199] == 0.0


def test_weighted_pitch_finds_sub_bin_centre():
    probs = np.zeros((2, 442))
    probs[0, [100, 101]] = [0.5, 0.5]  # halfway between classes 100 and 101
    probs[1, 0] = 1.0
    f0 = labels.weighted_pitch(probs, np.array([100, 0]))
    expected = labels.midi_to_hz(labels.MIDI_MIN + 99.5 / 8)
    assert f0[0] == pytest.approx(expected)
    assert f0[1] == 0.0
