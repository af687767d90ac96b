"""Weight averaging (scripts/average_weights.py): the mean of students of one teacher, refused otherwise."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, TINY_MODEL, harmonic_tone, save_random_bundle

SCRIPT = ROOT / "scripts" / "average_weights.py"


@pytest.fixture(scope="module")
def two_students(tmp_path_factory):
    folder = tmp_path_factory.mktemp("soup")
    return save_random_bundle(folder / "a.npz", seed=0), save_random_bundle(folder / "b.npz", seed=1)


def test_average_is_the_weighted_mean_and_records_its_sources(two_students, tmp_path):
    from vocal_melody.bundle import read_bundle, save_bundle
    from vocal_melody.cache import file_digest
    from vocal_melody.lab.training.averaging import average_bundles

    a, b = (read_bundle(path) for path in two_students)
    tuned = tmp_path / "tuned.npz"  # a member with a voicing rule: the average must not inherit it
    save_bundle(tuned, a.weights, a.mean, a.std, dict(a.config, decoding={"voicing_threshold": 0.6}))
    soup = read_bundle(average_bundles([tuned, two_students[1]], tmp_path / "soup.npz", [3, 1]))
    assert sum(not np.array_equal(x, y) for x, y in zip(a.weights, b.weights)) >= 10  # kernels differ
    for x, y, mixed in zip(a.weights, b.weights, soup.weights):
        np.testing.assert_allclose(mixed, 0.75 * x + 0.25 * y, rtol=1e-6, atol=1e-7)
    assert "decoding" not in soup.config and soup.config["model"] == TINY_MODEL
    assert [s["proportion"] for s in soup.config["averaged_from"]] == [0.75, 0.25]
    assert soup.config["averaged_from"][1]["digest"] == file_digest(two_students[1])
    assert soup.config["averaged_from"][0]["decoding"] == {"voicing_threshold": 0.6}
    np.testing.assert_array_equal(soup.mean, a.mean)


def test_average_of_a_model_with_itself_predicts_as_the_model(two_students, tmp_path):
    from vocal_melody.inference.extractor import MelodyExtractor
    from vocal_melody.lab.training.averaging import average_bundles

    soup = average_bundles([two_students[0], two_students[0]], tmp_path / "self.npz")
    tone = harmonic_tone(220.0, 1.0, 8000)
    expected = MelodyExtractor(two_students[0], engine="tf").activations(tone)
    np.testing.assert_allclose(MelodyExtractor(soup, engine="tf").activations(tone), expected, atol=1e-6)


def test_bundles_of_other_starting_points_or_shapes_are_refused(two_students, tmp_path):
    from vocal_melody.bundle import read_bundle, save_bundle
    from vocal_melody.errors import MelodyError
    from vocal_melody.lab.training.averaging import average_bundles

    a = read_bundle(two_students[0])
    other_stats = save_bundle(tmp_path / "stats.npz", a.weights, a.mean + 1, a.std, a.config)
    wider = save_random_bundle(tmp_path / "wide.npz", {"filters": [4, 4, 4, 8], "lstm_units": 4})
    cases = [([two_students[0], other_stats], "normalisation statistics differ"),
             ([two_students[0], wider], "its model differ"),
             ([two_students[0]], "at least two"),
             (list(two_students), "proportions must be positive")]
    for paths, message in cases:
        with pytest.raises(MelodyError, match=message):
            average_bundles(paths, tmp_path / "out.npz", [1, -1] if "positive" in message else None)
    assert not (tmp_path / "out.npz").exists()


def test_cli_never_overwrites_an_existing_file(two_students, tmp_path):
    existing = tmp_path / "keep.npz"
    existing.write_bytes(b"user data")
    result = subprocess.run([sys.executable, str(SCRIPT), *map(str, two_students), "-o", str(existing)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "keep.npz exists" in result.stderr
    assert existing.read_bytes() == b"user data"
    result = subprocess.run([sys.executable, str(SCRIPT), *map(str, two_students), "-o", str(tmp_path / "s.npz")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.npz").exists()
