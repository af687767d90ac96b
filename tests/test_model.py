import numpy as np
import pytest
from conftest import TINY_MODEL, save_random_bundle

from vocal_melody.bundle import read_bundle
from vocal_melody.errors import MelodyError


def test_paper_model_size_and_shapes():
    from vocal_melody.model import build_model

    net = build_model()
    assert net.count_params() == 4_228_602
    assert net.input_shape == (None, 31, 513, 1)
    assert net.output_shape == (None, 31, 442)


def test_softmax_output_per_frame():
    from vocal_melody.model import build_model

    net = build_model(**TINY_MODEL)
    out = np.asarray(net(np.random.default_rng(0).standard_normal((2, 31, 513, 1)).astype(np.float32)))
    assert out.shape == (2, 31, 442)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


def test_bundle_round_trip(tmp_path):
    from vocal_melody.model import model_from_bundle

    path = save_random_bundle(tmp_path / "w.npz")
    bundle = read_bundle(path)
    net = model_from_bundle(bundle)
    for saved, loaded in zip(bundle.weights, net.get_weights()):
        np.testing.assert_array_equal(saved, loaded)
    assert bundle.config["labels"]["n_classes"] == 442
    assert bundle.mean.shape == (31, 513)


def test_missing_bundle_names_the_path_and_how_to_train(tmp_path):
    with pytest.raises(MelodyError, match=r"nope\.npz not found: train one with"):
        read_bundle(tmp_path / "nope.npz")


def test_truncated_bundle_is_reported(tmp_path):
    good = save_random_bundle(tmp_path / "w.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MelodyError, match="not a valid weights bundle"):
        read_bundle(bad)


def test_bundle_with_another_label_definition_is_refused(tmp_path):
    import json

    path = save_random_bundle(tmp_path / "w.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    config = json.loads(str(arrays["config"]))
    config["labels"] = dict(config["labels"], midi_min=38.0)  # a shifted class-to-MIDI map
    arrays["config"] = np.array(json.dumps(config))
    np.savez(tmp_path / "shifted.npz", **arrays)
    with pytest.raises(MelodyError, match="different pitch-label definition"):
        read_bundle(tmp_path / "shifted.npz")


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    from vocal_melody.model import model_from_bundle

    path = save_random_bundle(tmp_path / "w.npz")
    bundle = read_bundle(path)
    bundle.config["model"] = {"filters": [8, 8, 8, 8], "lstm_units": 4}
    with pytest.raises(MelodyError, match="do not fit"):
        model_from_bundle(bundle)
