import numpy as np
import pytest

from vocal_melody import evaluation
from vocal_melody.cli import evaluate
from vocal_melody.errors import MelodyError
from vocal_melody.formats import tracks
from vocal_melody.formats.readers import read_f0


def hand_made_pair():
    """100 frames: 50 voiced at 220 Hz then 50 unvoiced.

    The estimate gets 40 voiced frames right, 10 an octave too high (chroma
    right, pitch wrong) and voices 10 of the unvoiced frames, so:
    VR = 50/50, VFA = 10/50, RPA = 40/50, RCA = 50/50, OA = (40 + 40)/100.
    """
    times = np.arange(100) * 0.01
    ref = np.where(np.arange(100) < 50, 220.0, 0.0)
    est = ref.copy()
    est[40:50] = 440.0
    est[60:70] = 220.0
    return times, ref, est


EXPECTED = {"VR": 1.0, "VFA": 0.2, "RPA": 0.8, "RCA": 1.0, "OA": 0.8}


def write_pair(tmp_path, ref_name="song_MELODY2.csv", est_name="pitch_song.wav.txt"):
    times, ref, est = hand_made_pair()
    ref_path = tmp_path / "ref" / ref_name
    est_path = tmp_path / "est" / est_name
    ref_path.parent.mkdir(exist_ok=True)
    est_path.parent.mkdir(exist_ok=True)
    ref_path.write_text("".join(f"{t:.2f},{f:.4f}\n" for t, f in zip(times, ref)))
    est_path.write_text("".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times, est)))
    return ref_path, est_path


def test_metric_values_on_a_hand_made_pair(tmp_path):
    ref_path, est_path = write_pair(tmp_path)
    [(key, scores)] = evaluation.evaluate_files(tracks.match_files(ref_path, est_path))
    assert key == "song"
    for name, value in EXPECTED.items():
        assert scores[name] == pytest.approx(value), name


def test_perfect_estimate_scores_one(tmp_path):
    from vocal_melody.evaluation import melody_scores

    times, ref, _ = hand_made_pair()
    scores = melody_scores(times, ref, times, ref * 2 ** (40 / 1200))  # 40 cents off: within 50
    assert scores["OA"] == pytest.approx(1.0) and scores["VFA"] == 0.0


def test_folders_mean_and_csv(tmp_path, capsys):
    write_pair(tmp_path, "a_MELODY2.csv", "pitch_a.wav.txt")
    times, ref, _ = hand_made_pair()
    (tmp_path / "ref" / "bREF.txt").write_text("".join(f"{t:.3f}\t{f}\n" for t, f in zip(times, ref)))
    (tmp_path / "est" / "pitch_b.mp3.txt").write_text("".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times, ref)))
    csv_path = tmp_path / "scores.csv"
    assert evaluate.main([str(tmp_path / "ref"), str(tmp_path / "est"), "--csv", str(csv_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["track", "VR", "VFA", "RPA", "RCA", "OA"]
    rows = csv_path.read_text().splitlines()
    assert rows[1].startswith("a,") and rows[2].startswith("b,")
    mean = rows[3].split(",")
    assert mean[0] == "mean (2 tracks)"
    assert float(mean[3]) == pytest.approx((0.8 + 1.0) / 2)  # RPA
    assert float(mean[5]) == pytest.approx((0.8 + 1.0) / 2)  # OA


@pytest.mark.parametrize("name, expected", [
    ("pitch_song.wav.txt", "song"), ("song_MELODY2.csv", "song"), ("songREF.txt", "song"),
    ("song_f0.csv", "song"), ("song.csv", "song"), ("pitch_my.song.mp3.csv", "my.song"),
])
def test_track_keys(name, expected):
    assert tracks.track_key(name) == expected


@pytest.mark.parametrize("text, message", [
    ("0.0 100 1\n0.01 100 1\n", "expected 2 columns"),
    ("0.0 100\n0.02 100\n0.01 100\n", "not increasing"),
    ("0.0 abc\n", "non-numeric"),
    ("", "no f0 values"),
    ("0.0 nan\n", "NaN"),
])
def test_bad_reference_files(tmp_path, text, message):
    path = tmp_path / "ref.txt"
    path.write_text(text)
    with pytest.raises(MelodyError, match=message):
        read_f0(path)


def test_reads_headers_and_our_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("time,frequency,confidence\n0.00,0.0000,0.1\n0.01,220.0000,0.9\n")
    times, f0 = read_f0(path)
    assert times.tolist() == [0.0, 0.01] and f0.tolist() == [0.0, 220.0]
    path.write_text("time,f0_hz\n0.0,-100\n0.005,110\n")
    assert read_f0(path)[1].tolist() == [0.0, 110.0]  # negative = unvoiced


def test_unmatched_folders_explain(tmp_path):
    write_pair(tmp_path, "a_MELODY2.csv", "pitch_zzz.wav.txt")
    with pytest.raises(MelodyError, match="names must match"):
        tracks.match_files(tmp_path / "ref", tmp_path / "est")


def negative_f0_pair():
    """Reference and estimate with negative f0 (unvoiced frames carrying a pitch guess), as MIREX writes.

    Reference: 60 voiced frames at 220 Hz, 40 unvoiced (20 of them with -220). Estimate: right on the
    first 30 voiced frames, unvoiced but with the right pitch (-220) on the next 20, an octave off on
    the last 10, voiced at 220 on 10 unvoiced frames, negative everywhere else.
    By hand: VR 40/60, VFA 10/40, RPA 50/60, RCA 60/60, OA (30 + 30)/100.
    """
    times = np.arange(100) * 0.01
    ref = np.zeros(100)
    ref[:60] = 220.0
    ref[60:80] = -220.0
    est = np.full(100, -300.0)
    est[:30] = 220.0
    est[30:50] = -220.0
    est[50:60] = 440.0
    est[60:70] = 220.0
    return times, ref, est


def test_negative_f0_scores_match_mir_eval_and_the_hand_count(tmp_path):
    import mir_eval

    times, ref, est = negative_f0_pair()
    ref_path, est_path = tmp_path / "songREF.txt", tmp_path / "pitch_song.wav.txt"
    ref_path.write_text("".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times, ref)))
    est_path.write_text("".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times, est)))
    (_, scores), = evaluation.evaluate_files(tracks.match_files(ref_path, est_path))
    direct = mir_eval.melody.evaluate(times, ref, times, est)
    names = {"VR": "Voicing Recall", "VFA": "Voicing False Alarm", "RPA": "Raw Pitch Accuracy",
             "RCA": "Raw Chroma Accuracy", "OA": "Overall Accuracy"}
    for short, long in names.items():
        assert scores[short] == pytest.approx(direct[long], abs=1e-4), short
    by_hand = {"VR": 40 / 60, "VFA": 10 / 40, "RPA": 50 / 60, "RCA": 1.0, "OA": 0.6}
    assert scores == pytest.approx(by_hand, abs=1e-4)
    assert read_f0(est_path)[1].min() == 0.0  # training labels still read negative as unvoiced


def test_a_compose_folder_with_metadata_beside_its_labels(tmp_path):
    times, ref, est = hand_made_pair()
    (tmp_path / "test").mkdir()
    (tmp_path / "est").mkdir()
    (tmp_path / "test" / "test_00006.f0.txt").write_text("".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times, ref)))
    (tmp_path / "test" / "test_00006.json").write_text('{"id": "test_00006", "split": "test"}')
    (tmp_path / "est" / "pitch_test_00006.flac.txt").write_text(
        "".join(f"{t:.2f} {f:.4f}\n" for t, f in zip(times, est)))
    (key, scores), = evaluation.evaluate_files(tracks.match_files(tmp_path / "test", tmp_path / "est"))
    assert key == "test_00006" and scores == pytest.approx(EXPECTED, abs=1e-9)


def _write(path, times, f0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{t:.3f} {f:.4f}\n" for t, f in zip(times, f0)))
    return path


def test_evaluate_warns_about_what_it_would_otherwise_score_silently(tmp_path, capsys):
    times, ref, est = hand_made_pair()
    for name in ("a", "b", "c", "d"):
        _write(tmp_path / "ref" / f"{name}REF.txt", times, ref)
    for name in ("a", "b"):
        _write(tmp_path / "est" / f"pitch_{name}.wav.txt", times, est)
    evaluate.main([str(tmp_path / "ref"), str(tmp_path / "est")])
    captured = capsys.readouterr()
    assert "warning: 2 of 4 references" in captured.err and "(c, d)" in captured.err
    assert "mean (2 tracks)" in captured.out
    _write(tmp_path / "silent" / "sREF.txt", times, np.zeros(100))
    _write(tmp_path / "ms" / "mREF.txt", times * 1000, ref)
    _write(tmp_path / "short" / "pitch_s.wav.txt", times[:10], est[:10])
    evaluate.main([str(tmp_path / "silent" / "sREF.txt"), str(tmp_path / "est" / "pitch_a.wav.txt")])
    assert "no voiced frame" in capsys.readouterr().err
    evaluate.main([str(tmp_path / "ms" / "mREF.txt"), str(tmp_path / "est" / "pitch_a.wav.txt")])
    assert "seconds are expected" in capsys.readouterr().err
    evaluate.main([str(tmp_path / "ref" / "aREF.txt"), str(tmp_path / "short" / "pitch_s.wav.txt")])
    assert "the estimate ends at 0.09 s, the reference at 0.99 s" in capsys.readouterr().err


def test_a_compose_manifest_as_reference(tmp_path, capsys):
    times, ref, est = hand_made_pair()
    for split, name in (("test", "test_00001"), ("train", "train_00002")):
        _write(tmp_path / "corpus" / split / f"{name}.f0.txt", times, ref)
    (tmp_path / "corpus" / "test" / "test_00001.json").write_text("{}")
    (tmp_path / "corpus" / "manifest.csv").write_text(
        "id,split,audio,label\ntest_00001,test,test/test_00001.flac,test/test_00001.f0.txt\n"
        "train_00002,train,train/train_00002.flac,train/train_00002.f0.txt\n")
    _write(tmp_path / "est" / "pitch_test_00001.flac.txt", times, est)
    assert evaluate.main([str(tmp_path / "corpus" / "manifest.csv"), str(tmp_path / "est"), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[0] == "test_00001" and "mean (1 tracks)" in out
    assert "0.8000" in out.splitlines()[1]
    with pytest.raises(MelodyError, match="no tracks in split 'val'"):
        evaluate.main([str(tmp_path / "corpus" / "manifest.csv"), str(tmp_path / "est"), "--split", "val"])
