import numpy as np
import pytest

from vocal_melody.lab import rand_audio_augment as augment

RATE = 8000


def noise(seconds=1.0, seed=0):
    return (0.05 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def band_energy(audio, low, high, rate=RATE):
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    return spectrum[(freqs >= low) & (freqs < high)].sum()


def test_chain_is_deterministic_by_track_and_seed():
    assert augment.chain_for("song.wav", 1) == augment.chain_for("song.wav", 1)
    chains = {augment.describe(augment.chain_for("song.wav", seed)) for seed in range(20)}
    assert len(chains) > 10


def test_each_effect_has_probability_one_half_and_paper_ranges():
    rng = np.random.default_rng(0)
    counts = dict.fromkeys(augment.EFFECTS, 0)
    for _ in range(2000):
        for name, params in augment.sample_chain(rng):
            counts[name] += 1
            if name == "lowshelf":
                assert -12 <= params["gain_db"] <= 12 and 20 <= params["frequency"] <= 300
                assert 0.1 <= params["slope"] <= 0.7
            if name == "highshelf":
                assert 1000 <= params["frequency"] <= 3000
            if name == "equalizer":
                assert 100 <= params["frequency"] <= 3000 and 0.5 <= params["width_q"] <= 1.5
                assert -6 <= params["gain_db"] <= 6
            if name == "overdrive":
                assert 3 <= params["gain_db"] <= 7 and params["colour"] == 40
            if name == "reverb":
                assert 1 <= params["wet_gain"] <= 6 and 30 <= params["reverberance"] <= 70
    for name, count in counts.items():
        assert 900 < count < 1100, name


def test_length_and_rate_unchanged_by_every_effect():
    audio = noise(0.7)
    rng = np.random.default_rng(1)
    for _ in range(6):
        out = augment.apply_chain(audio, RATE, augment.sample_chain(rng))
        assert out.shape == audio.shape and out.dtype == np.float32


def test_low_shelf_boost_raises_energy_below_its_frequency():
    audio = noise()
    chain = [("lowshelf", {"gain_db": 12.0, "frequency": 200.0, "slope": 0.5})]
    out = augment.apply_chain(audio, RATE, chain)
    assert band_energy(out, 20, 150) / band_energy(audio, 20, 150) > 5.0      # about +12 dB
    assert band_energy(out, 1500, 3500) / band_energy(audio, 1500, 3500) == pytest.approx(1.0, rel=0.3)


def test_high_shelf_cut_lowers_energy_above_its_frequency():
    audio = noise()
    out = augment.apply_chain(audio, RATE, [("highshelf", {"gain_db": -12.0, "frequency": 2000.0, "slope": 0.5})])
    assert band_energy(out, 2500, 3900) / band_energy(audio, 2500, 3900) < 0.2
    assert band_energy(out, 50, 500) / band_energy(audio, 50, 500) == pytest.approx(1.0, rel=0.3)


def test_equalizer_peak_at_its_centre():
    audio = noise()
    out = augment.apply_chain(audio, RATE, [("equalizer", {"frequency": 1000.0, "width_q": 1.0, "gain_db": 6.0})])
    assert band_energy(out, 900, 1100) / band_energy(audio, 900, 1100) > 2.5
    assert band_energy(out, 3000, 3900) / band_energy(audio, 3000, 3900) == pytest.approx(1.0, rel=0.3)


def test_overdrive_adds_harmonics_and_reverb_adds_a_tail():
    t = np.arange(RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    driven = augment.apply_chain(tone, RATE, [("overdrive", {"gain_db": 7.0, "colour": 40.0})])
    assert band_energy(driven, 850, 950) / band_energy(driven, 250, 350) > 100 * (
        band_energy(tone, 850, 950) / band_energy(tone, 250, 350) + 1e-12)
    burst = np.zeros(RATE, np.float32)
    burst[:800] = noise(0.1)
    wet = augment.apply_chain(burst, RATE, [("reverb", {"reverberance": 70.0, "high_freq_damping": 50.0,
                                                         "room_scale": 70.0, "wet_gain": 6.0})])
    assert np.abs(wet[2400:4000]).max() > 100 * (np.abs(burst[2400:4000]).max() + 1e-6)


def test_original_rate_quirk_moves_effect_frequencies_down():
    """The original told sox 8 kHz audio was 44.1 kHz: a 1 kHz peak then acts near 181 Hz."""
    audio = noise()
    chain = [("equalizer", {"frequency": 1000.0, "width_q": 2.0, "gain_db": 6.0})]
    quirk = augment.apply_chain(audio, RATE, chain, original_rate_quirk=True)
    true = augment.apply_chain(audio, RATE, chain)
    assert band_energy(quirk, 160, 200) / band_energy(audio, 160, 200) > 2.0
    assert band_energy(true, 160, 200) / band_energy(audio, 160, 200) < 1.3
