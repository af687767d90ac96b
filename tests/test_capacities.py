"""Model capacities (--model): names, widths, the shipped bundles of each, and what a missing one says."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, harmonic_tone, save_random_bundle, write_wav

from vocal_melody import bundle as bundles
from vocal_melody.errors import MelodyError


@pytest.fixture
def weights_folder(monkeypatch, tmp_path):
    """A weights folder holding the full model (the shipped file) and a random tiny-capacity bundle."""
    from vocal_melody.model import CAPACITIES

    folder = tmp_path / "weights"
    folder.mkdir()
    filters, lstm_units = CAPACITIES["tiny"]
    save_random_bundle(folder / bundles.MODELS["tiny"], {"filters": list(filters), "lstm_units": lstm_units})
    monkeypatch.setattr(bundles, "WEIGHTS_FOLDER", folder)
    return folder


def test_every_capacity_has_widths_and_a_bundle_name():
    from vocal_melody.model import CAPACITIES, PAPER_FILTERS, PAPER_LSTM_UNITS, build_model

    assert list(CAPACITIES) == list(bundles.MODELS)
    assert CAPACITIES["full"] == (PAPER_FILTERS, PAPER_LSTM_UNITS)
    counts = [build_model(filters, units).count_params() for filters, units in CAPACITIES.values()]
    assert counts[0] == 4_228_602 and counts == sorted(counts, reverse=True)


def test_each_shipped_capacity_is_built_as_its_name_says():
    from vocal_melody.model import CAPACITIES

    shipped = bundles.shipped_models()
    assert shipped[0] == "full"
    for model in shipped:
        filters, lstm_units = CAPACITIES[model]
        args = bundles.read_bundle(bundles.model_weights(model)).model_args
        assert args == {"filters": list(filters), "lstm_units": lstm_units}, model


def test_weights_are_chosen_by_file_or_by_capacity(weights_folder, tmp_path):
    assert bundles.model_weights() == bundles.DEFAULT_WEIGHTS
    assert bundles.model_weights("full") == bundles.DEFAULT_WEIGHTS
    assert bundles.model_weights("tiny") == weights_folder / "melody_crnn_tiny.npz"
    assert bundles.model_weights(None, tmp_path / "mine.npz") == tmp_path / "mine.npz"
    assert bundles.shipped_models() == ["full", "tiny"]
    with pytest.raises(MelodyError, match="not both"):
        bundles.model_weights("tiny", tmp_path / "mine.npz")
    with pytest.raises(MelodyError, match=r"unknown model 'huge' \(choose from full, small, tiny\)"):
        bundles.model_weights("huge")
    with pytest.raises(MelodyError, match=r"model 'small' is not shipped with this version \(shipped: full, tiny\)"):
        bundles.model_weights("small")


def test_extractor_loads_the_capacity_it_is_asked_for(weights_folder):
    from vocal_melody.inference.extractor import MelodyExtractor, extract_melody

    extractor = MelodyExtractor(model="tiny", engine="tf")
    assert extractor.bundle.path == weights_folder / "melody_crnn_tiny.npz"
    assert extractor.bundle.model_args["filters"] == [16, 32, 48, 64]
    times, f0, _ = extract_melody(harmonic_tone(220.0, 1.0, 8000), 8000, extractor=extractor)
    assert len(times) == len(f0) == 101


def test_cli_model_option_errors_in_one_line(tmp_path):
    wav = write_wav(tmp_path / "tone.wav", harmonic_tone(220.0, 0.5, 8000), 8000)
    missing = [m for m in bundles.MODELS if m not in bundles.shipped_models()]
    cases = [(["--model", "full", "-w", str(tmp_path / "x.npz")], "give a weights file or a model capacity, not both")]
    if missing:
        cases.append((["--model", missing[0]], f"model '{missing[0]}' is not shipped with this version"))
    for extra, message in cases:
        result = subprocess.run([sys.executable, str(ROOT / "melodyExtraction_NS.py"), "-p", str(wav), "-o",
                                 str(tmp_path / "out"), "-q", *extra], capture_output=True, text=True)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == f"error: {message}" or result.stderr.strip().startswith(f"error: {message}")
        assert "\n" not in result.stderr.strip() and not (tmp_path / "out").exists()


def test_cli_runs_a_chosen_capacity(weights_folder, tmp_path):
    from vocal_melody.cli import extract as extract_cli

    wav = write_wav(tmp_path / "tone.wav", harmonic_tone(220.0, 0.5, 8000), 8000)
    assert extract_cli.main(["-p", str(wav), "-o", str(tmp_path / "out"), "--model", "tiny", "--engine", "tf",
                             "-q"]) == 0
    lines = (tmp_path / "out" / "pitch_tone.wav.txt").read_text().splitlines()
    assert len(lines) == 51 and np.isfinite([float(v) for line in lines for v in line.split()]).all()
