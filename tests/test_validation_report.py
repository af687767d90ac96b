"""scripts/validation_report.py: scores at several voicing thresholds, per manifest, against mir_eval."""

import csv
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, make_tone_corpus

SCRIPT = ROOT / "scripts" / "validation_report.py"
_SPEC = importlib.util.spec_from_file_location("validation_report", SCRIPT)
validation_report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(validation_report)


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_thresholds_decide_on_the_voicing_probability_of_known_frames():
    reference = np.zeros(200)
    reference[50:150] = 220.0
    times = np.arange(200) * 0.01
    pitch = np.full(200, 220.0)
    confidence = np.where(reference > 0, 0.6, 0.3)
    low, middle, high = validation_report.track_scores(times, pitch, confidence, reference, [0.2, 0.5, 0.7])
    assert low["VR"] == 1.0 and low["VFA"] == 1.0 and low["OA"] == pytest.approx(0.5) and low["voiced"] == 1.0
    assert middle["OA"] == 1.0 and middle["voiced"] == pytest.approx(0.5)
    assert high["VR"] == 0.0 and high["OA"] == pytest.approx(0.5) and high["voiced"] == 0.0


def test_threshold_grid_includes_both_ends():
    assert validation_report.threshold_grid(0.2, 0.75, 0.05) == pytest.approx(list(np.arange(0.2, 0.76, 0.05)))
    assert validation_report.threshold_grid(0.5, 0.5, 0.1) == [0.5]


@pytest.mark.heavy
def test_report_matches_mir_eval_per_track_and_marks_the_best_threshold(tmp_path, tiny_bundle):
    from vocal_melody.lab.corpora.datasets import read_manifest
    from vocal_melody.evaluation import melody_scores
    from vocal_melody.inference.extractor import extract_melody

    sung = make_tone_corpus(tmp_path / "tones")
    silent_dir = tmp_path / "silent"
    silent = make_tone_corpus(silent_dir, n_train=0, n_val=2)
    for label in silent_dir.glob("val/*.f0.txt"):  # the same tones labeled unvoiced: a corpus without a voice
        label.write_text("".join(f"{line.split()[0]} 0.0\n" for line in label.read_text().splitlines()))
    out = tmp_path / "tracks.csv"
    result = run(tiny_bundle, "--val", sung, "--probe", silent, "--thresholds", "0.3", "0.5", "0.1",
                 "--engine", "tf", "--csv", out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[1] == "threshold,all (2),groups (1),tones (2),silent (2) voiced,no voice (0) voiced"
    assert len(lines) == 5 and sum(line.split(",")[0].endswith(" *") for line in lines[2:]) == 1
    assert all(line.split(",")[1] == line.split(",")[2] for line in lines[2:])  # one group: its mean is all
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 3 * 4
    track = read_manifest(sung, splits=("val",))[0]
    times, f0, _ = extract_melody(track.audio, weights=tiny_bundle, voicing_threshold=0.4)
    expected = melody_scores(np.arange(len(track.f0)) * 0.01, track.f0, times, f0)
    row = next(r for r in rows if r["track"] == track.name and r["threshold"] == "0.40")
    for metric in ("VR", "VFA", "RPA", "OA"):
        assert float(row[metric]) == pytest.approx(expected[metric], abs=6e-5)
    silent_row = lines[3].split(",")
    voiced = [float(r["voiced"]) for r in rows if r["manifest"] == "silent" and r["threshold"] == "0.40"]
    assert float(silent_row[4]) == pytest.approx(np.mean(voiced), abs=1e-4)


def test_group_mean_weighs_each_manifest_the_same():
    sung = [(False, [{"OA": 1.0, "voiced": 1.0}, {"OA": 0.5, "voiced": 1.0}])] * 3
    silent = [(True, [{"OA": 0.2, "voiced": 0.8}, {"OA": 0.9, "voiced": 0.1}])]
    groups = {"synth": sung, "instrumental": silent}
    text = validation_report.report(groups, ["synth", "instrumental"], [0.3, 0.6], val_mean="groups")
    lines = text.splitlines()
    assert lines[0] == "threshold,all (4),groups (2),synth (3),instrumental (1) voiced,no voice (1) voiced"
    assert lines[1] == "0.30,0.8000,0.6000,1.0000,0.8000,0.8000"
    assert lines[2] == "0.60 *,0.6000,0.7000,0.5000,0.1000,0.1000"
    by_tracks = validation_report.report(groups, ["synth", "instrumental"], [0.3, 0.6]).splitlines()
    assert by_tracks[1].startswith("0.30 *,")


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_bundle):
    out = tmp_path / "tracks.csv"
    result = run(tiny_bundle, "--val", tmp_path / "missing.csv", "--csv", out)
    assert result.returncode == 1 and "missing.csv" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not out.exists()
    result = run(tiny_bundle, "--val", make_tone_corpus(tmp_path / "t"), "--thresholds", "0.5", "0.4", "0.1")
    assert result.returncode == 1 and "LOW <= HIGH" in result.stderr and "Traceback" not in result.stderr
    result = run(tiny_bundle, "--val", tmp_path / "t" / "manifest.csv", "--val-split", "test")
    assert result.returncode == 1 and "no tracks in split 'test'" in result.stderr
