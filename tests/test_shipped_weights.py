"""The shipped model finds the demo song's melody (thresholds a little below the model card's figures)."""

import subprocess

import pytest
from conftest import ROOT

WEIGHTS = ROOT / "vocal_melody" / "weights" / "melody_crnn.npz"
MIN_RPA = 0.85
MIN_OA = 0.80


@pytest.mark.skipif(not WEIGHTS.exists(), reason="no shipped weights")
def test_shipped_model_finds_the_demo_melody():
    from vocal_melody.evaluation import melody_scores
    from vocal_melody.formats.readers import read_f0
    from vocal_melody.inference.extractor import extract_melody

    times, f0, confidence = extract_melody(ROOT / "audio" / "demo_song.wav")
    ref_times, ref_f0 = read_f0(ROOT / "audio" / "demo_song.f0.txt")
    scores = melody_scores(ref_times, ref_f0, times, f0)
    assert scores["RPA"] >= MIN_RPA and scores["OA"] >= MIN_OA, scores
    assert len(times) == len(ref_times)


@pytest.mark.skipif(not WEIGHTS.exists(), reason="no shipped weights")
def test_shipped_bundle_is_the_paper_model_with_a_tuned_voicing_rule():
    from vocal_melody.bundle import read_bundle

    bundle = read_bundle(WEIGHTS)
    assert bundle.model_args == {"filters": [64, 128, 192, 256], "lstm_units": 256}
    assert "voicing_threshold" in bundle.config.get("decoding", {})


@pytest.mark.skipif(not WEIGHTS.exists(), reason="no shipped weights")
def test_shipped_int8_model_was_made_from_the_shipped_bundle():
    from vocal_melody.bundle import read_bundle
    from vocal_melody.inference.engines import int8_folder, matching_int8_model

    if not int8_folder(WEIGHTS).exists():
        pytest.skip("no int8 model shipped")
    assert matching_int8_model(read_bundle(WEIGHTS)) is not None, "stale int8 model: rerun scripts/quantize_weights.py"


def test_weights_folder_stays_within_its_budget():
    folder = WEIGHTS.parent.relative_to(ROOT)
    tracked = subprocess.run(["git", "ls-files", str(folder)], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    assert sum((ROOT / name).stat().st_size for name in tracked) < 40e6


@pytest.mark.skipif(not WEIGHTS.exists(), reason="no shipped weights")
def test_unvoiced_pitch_writes_negative_guesses_and_keeps_voiced_frames(tmp_path):
    import sys

    import numpy as np

    from vocal_melody.evaluation import melody_scores
    from vocal_melody.formats.readers import read_f0

    outputs = {}
    for name, extra in (("plain", []), ("mirex", ["--unvoiced-pitch"])):
        result = subprocess.run([sys.executable, str(ROOT / "melodyExtraction_NS.py"), "-p",
                                 str(ROOT / "audio" / "demo_song.wav"), "-o", str(tmp_path / name), "-q", *extra],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        outputs[name] = read_f0(tmp_path / name / "pitch_demo_song.wav.txt", keep_negative=True)
    (times, plain), (_, mirex) = outputs["plain"], outputs["mirex"]
    voiced = plain > 0
    np.testing.assert_array_equal(mirex[voiced], plain[voiced])
    assert np.all(mirex[~voiced] < 0)  # every unvoiced frame carries a guess
    ref_times, ref_f0 = read_f0(ROOT / "audio" / "demo_song.f0.txt")
    plain_scores = melody_scores(ref_times, ref_f0, times, plain)
    mirex_scores = melody_scores(ref_times, ref_f0, times, mirex)
    assert mirex_scores["OA"] == pytest.approx(plain_scores["OA"]) and mirex_scores["VR"] == plain_scores["VR"]
    assert mirex_scores["RPA"] >= plain_scores["RPA"]


@pytest.mark.skipif(not (ROOT / "vocal_melody" / "weights" / "melody_crnn_tiny.int8").exists(), reason="no tiny int8")
def test_int8_engine_runs_under_an_avx2_cap_as_without(tmp_path):
    """oneDNN capped at AVX2 (bench/speed.py --max-isa): float layers fall back from bf16 to f32, the same melody."""
    import os
    import sys

    import numpy as np

    from vocal_melody.formats.readers import read_f0

    outputs = {}
    for name, cap in (("capped", "AVX2"), ("uncapped", "")):
        env = dict(os.environ, ONEDNN_MAX_CPU_ISA=cap)
        result = subprocess.run([sys.executable, str(ROOT / "melodyExtraction_NS.py"), "-p",
                                 str(ROOT / "audio" / "demo_song.wav"), "-o", str(tmp_path / name), "-q",
                                 "--model", "tiny", "--engine", "int8"], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        outputs[name] = read_f0(tmp_path / name / "pitch_demo_song.wav.txt")[1]
    capped, uncapped = outputs["capped"], outputs["uncapped"]
    assert np.mean((capped > 0) == (uncapped > 0)) >= 0.99
    both = (capped > 0) & (uncapped > 0)
    assert np.mean(np.abs(1200 * np.log2(capped[both] / uncapped[both])) < 50) >= 0.99
