"""The int8 engine: built from a bundle by scripts/quantize_weights.py, used only while it matches."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, make_tone_corpus, save_random_bundle

pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    bundle = save_random_bundle(folder / "tiny.npz", {"filters": [4, 4, 4, 4], "lstm_units": 4})
    manifest = make_tone_corpus(folder / "corpus")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "quantize_weights.py"), "-w", str(bundle),
                             "--calibration", str(manifest), "--windows", "6"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return bundle


@pytest.mark.heavy
def test_quantized_model_is_written_beside_the_bundle_with_its_digest(quantized):
    from vocal_melody.cache import file_digest

    folder = quantized.with_suffix(".int8")
    source = json.loads((folder / "source.json").read_text())
    assert source["bundle_digest"] == file_digest(quantized) and source["calibration_windows"] == 6
    xml = (folder / "model.xml").read_text()
    assert xml.count('type="FakeQuantize"') >= 8  # the eight 3x3 convolutions' inputs (and weights)
    assert str(folder.parent) not in xml and '<input_model value="saved_model" />' in xml  # no temporary path


def test_auto_uses_int8_and_stays_close_to_the_float32_reference(quantized):
    from vocal_melody.bundle import read_bundle
    from vocal_melody.inference.engines import TFEngine, make_engine

    bundle = read_bundle(quantized)
    engine = make_engine(bundle, "auto")
    assert engine.name == "int8"
    windows = np.random.default_rng(2).standard_normal((4, 31, 513, 1)).astype(np.float32)
    fast, reference = engine(windows), TFEngine(bundle)(windows)
    assert fast.shape == (4, 31, 442)
    np.testing.assert_allclose(fast.sum(axis=-1), 1.0, atol=1e-2)
    assert np.abs(fast - reference).max() < 0.05


@pytest.mark.heavy
def test_a_changed_bundle_does_not_use_a_stale_int8_model(quantized, tmp_path):
    from vocal_melody.bundle import read_bundle
    from vocal_melody.errors import MelodyError
    from vocal_melody.inference.engines import make_engine

    other = save_random_bundle(tmp_path / "tiny.npz", {"filters": [4, 4, 4, 4], "lstm_units": 4}, seed=1)
    shutil.copytree(quantized.with_suffix(".int8"), other.with_suffix(".int8"))  # made from another bundle
    bundle = read_bundle(other)
    assert make_engine(bundle, "auto").name == "openvino"
    with pytest.raises(MelodyError, match="no int8 model made from .*quantize_weights.py"):
        make_engine(bundle, "int8")


def test_quantize_script_errors_are_one_line(tmp_path):
    bundle = save_random_bundle(tmp_path / "tiny.npz", {"filters": [4, 4, 4, 4], "lstm_units": 4})
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "quantize_weights.py"), "-w", str(bundle),
                             "--calibration", str(tmp_path / "missing.csv")], capture_output=True, text=True)
    assert result.returncode == 1 and "missing.csv not found" in result.stderr
    assert result.stderr.count("\n") == 1


def test_auto_falls_back_to_the_float_model_when_the_int8_model_is_damaged(quantized, tmp_path):
    from vocal_melody.bundle import read_bundle
    from vocal_melody.errors import MelodyError
    from vocal_melody.inference.engines import make_engine

    bundle_path = tmp_path / "tiny.npz"
    shutil.copyfile(quantized, bundle_path)
    shutil.copytree(quantized.with_suffix(".int8"), bundle_path.with_suffix(".int8"))
    (bundle_path.with_suffix(".int8") / "model.xml").write_text("<net broken")
    bundle = read_bundle(bundle_path)
    assert make_engine(bundle, "auto").name == "openvino"
    with pytest.raises(MelodyError, match="cannot compile"):
        make_engine(bundle, "int8")
