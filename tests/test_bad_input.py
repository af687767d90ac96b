"""The bad-input matrix: every CLI answers bad input with one line naming the file and the problem."""

import errno
import subprocess

import numpy as np
import pytest
import soundfile
from conftest import harmonic_tone, make_tone_corpus, save_random_bundle, write_wav

from vocal_melody.cli import evaluate
from vocal_melody.lab.cli import train_teacher
from vocal_melody.cli import extract as extract_cli
from vocal_melody.lab.cli import synth as synth_cli
from vocal_melody.lab.cli import train_student as student_cli
from vocal_melody.cli.common import run_cli
from vocal_melody.errors import MelodyError


def run(main, argv, capsys):
    """Run a CLI as its __main__ would; returns (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    return exit_info.value.code, err


def assert_one_line_error(code, err, *fragments):
    assert code != 0
    assert "Traceback" not in err and "usage:" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert lines, err
    assert any(all(f in line for f in fragments) for line in lines), err


# ----------------------------------------------------------------------------- audio fixtures

def _mp3(tmp_path, seconds=1.0):
    wav = write_wav(tmp_path / "src.wav", harmonic_tone(220, seconds, 22050), 22050)
    mp3 = tmp_path / "song.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(mp3)], check=True)
    wav.unlink()
    return mp3


def bad_audio(kind, folder):
    path = folder / "input.wav"
    if kind == "missing":
        return folder / "missing.wav"
    if kind == "folder-without-audio":
        (folder / "empty_folder").mkdir()
        return folder / "empty_folder"
    if kind == "text-named-wav":
        path.write_text("definitely not audio\n" * 40)
    elif kind == "corrupt-mp3":
        path = folder / "corrupt.mp3"
        path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8)
    elif kind == "zero-bytes":
        path.write_bytes(b"")
    elif kind == "zero-samples":
        soundfile.write(str(path), np.zeros(0, np.float32), 8000)
    elif kind == "nan-samples":
        samples = harmonic_tone(220, 0.5, 8000)
        samples[100] = np.nan
        soundfile.write(str(path), samples, 8000, subtype="FLOAT")
    elif kind == "inf-samples":
        samples = harmonic_tone(220, 0.5, 8000)
        samples[10] = np.inf
        soundfile.write(str(path), samples, 8000, subtype="FLOAT")
    elif kind == "1-hz":
        soundfile.write(str(path), np.zeros(10, np.float32), 1)
    return path


BAD_AUDIO = {
    "missing": "no such file",
    "folder-without-audio": "no audio files found",
    "text-named-wav": "not a readable audio file",
    "corrupt-mp3": "not a readable audio file",
    "zero-bytes": "empty (0 bytes)",
    "zero-samples": "no samples",
    "nan-samples": "NaN or infinite",
    "inf-samples": "NaN or infinite",
    "1-hz": "too low",
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return save_random_bundle(tmp_path_factory.mktemp("w") / "tiny.npz")


# ----------------------------------------------------------------------------- melodyExtraction_NS.py

@pytest.mark.parametrize("kind", sorted(BAD_AUDIO))
def test_extraction_bad_audio(kind, tmp_path, bundle, capsys):
    path = bad_audio(kind, tmp_path)
    code, err = run(extract_cli.main, ["-p", path, "-o", tmp_path / "out", "-w", bundle, "-q"], capsys)
    assert_one_line_error(code, err, path.name, BAD_AUDIO[kind])
    assert not (tmp_path / "out").exists()  # nothing written, not even an empty folder


@pytest.mark.parametrize("kind, frames", [("silence", 101), ("shorter-than-a-hop", 1), ("192-khz", 51),
                                          ("8-channels", 26), ("truncated-mp3", None)])
def test_extraction_valid_edge_cases(kind, frames, tmp_path, bundle, capsys):
    if kind == "silence":
        path = write_wav(tmp_path / "a.wav", np.zeros(8000, np.float32), 8000)
    elif kind == "shorter-than-a-hop":
        path = write_wav(tmp_path / "a.wav", np.zeros(30, np.float32), 8000)
    elif kind == "192-khz":
        path = write_wav(tmp_path / "a.wav", harmonic_tone(300, 0.5, 192000), 192000)
    elif kind == "8-channels":
        path = write_wav(tmp_path / "a.wav", np.tile(harmonic_tone(300, 0.25, 16000)[:, None], (1, 8)), 16000)
    else:
        full = _mp3(tmp_path, 2.0)
        path = tmp_path / "cut.mp3"
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    code, err = run(extract_cli.main, ["-p", path, "-o", tmp_path / "out", "-w", bundle, "-q"], capsys)
    assert code == 0, err
    lines = (tmp_path / "out" / f"pitch_{path.name}.txt").read_text().splitlines()
    if frames is not None:
        assert len(lines) == frames
    else:
        assert 40 < len(lines) < 160  # about half of the 2 s that were encoded
    if kind in ("silence", "shorter-than-a-hop"):
        assert all(line.endswith(" 0.0000") for line in lines)  # all unvoiced


@pytest.mark.parametrize("case, message", [
    ("missing-weights", "not found: train one with"),
    ("corrupt-weights", "not a valid weights bundle"),
    ("weights-folder", "is a folder"),
    ("output-under-a-file", "cannot create output folder"),
    ("output-is-a-file", "is a file, not a folder"),
])
def test_extraction_bad_environment(case, message, tmp_path, bundle, capsys):
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(220, 0.3, 8000), 8000)
    weights, output = bundle, tmp_path / "out"
    if case == "missing-weights":
        weights = tmp_path / "none.npz"
    elif case == "corrupt-weights":
        weights = tmp_path / "bad.npz"
        weights.write_bytes(bundle.read_bytes()[:5000])
    elif case == "weights-folder":
        weights = tmp_path
    elif case == "output-under-a-file":
        (tmp_path / "file").write_text("x")
        output = tmp_path / "file" / "out"
    elif case == "output-is-a-file":
        output = tmp_path / "file"
        output.write_text("x")
    code, err = run(extract_cli.main, ["-p", wav, "-o", output, "-w", weights], capsys)
    assert_one_line_error(code, err, message)


def test_extraction_full_disk_leaves_no_partial_file(tmp_path, bundle, capsys, monkeypatch):
    from vocal_melody import fileio

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", no_space)
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(220, 0.3, 8000), 8000)
    code, err = run(extract_cli.main, ["-p", wav, "-o", tmp_path / "out", "-w", bundle, "-q"], capsys)
    assert_one_line_error(code, err, "pitch_a.wav.txt", "No space left on device")
    assert not (tmp_path / "out").exists()  # no partial file, and no folder it made for nothing


def test_extraction_unknown_option_value(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        extract_cli.main(["-p", str(tmp_path), "--engine", "cuda"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_batch_of_20_with_2_corrupt_files(tmp_path, bundle, capsys):
    folder = tmp_path / "batch"
    folder.mkdir()
    for index in range(18):
        write_wav(folder / f"song{index:02d}.wav", harmonic_tone(150 + 10 * index, 0.2, 8000), 8000)
    (folder / "broken1.wav").write_text("not audio at all " * 20)
    (folder / "broken2.mp3").write_bytes(b"ID3" + bytes(300))
    code, err = run(extract_cli.main, ["-p", folder, "-o", tmp_path / "out", "-w", bundle], capsys)
    assert code == 1
    assert len(list((tmp_path / "out").glob("pitch_*.txt"))) == 18
    assert "broken1.wav" in err and "broken2.mp3" in err
    assert "wrote 18 of 20 melody files" in err and "2 failed" in err


# ----------------------------------------------------------------------------- evaluate.py

def _ref(tmp_path, text, name="ref.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "0.00 0\n0.01 220\n0.02 220\n"


@pytest.mark.parametrize("ref_text, est_text, message", [
    ("0.00 0 1\n0.01 220 1\n", GOOD, "expected 2 columns"),
    ("0.00 0\n0.01 220 5\n", GOOD, "expected 2 columns"),
    ("0.00 0\n0.02 220\n0.01 220\n", GOOD, "not increasing"),
    ("0.00 0\n0.00 220\n", GOOD, "not increasing"),
    ("0.00 zero\n", GOOD, "non-numeric"),
    ("", GOOD, "no f0 values"),
    ("# only a comment\n", GOOD, "no f0 values"),
    ("0.00 nan\n0.01 220\n", GOOD, "NaN"),
    ("-0.01 0\n0.00 220\n", GOOD, "negative time"),
    (GOOD, "0.00 0 0 0\n", "expected 2 columns"),
])
def test_evaluate_bad_files(ref_text, est_text, message, tmp_path, capsys):
    ref = _ref(tmp_path, ref_text)
    est = _ref(tmp_path, est_text, "pitch_x.wav.txt")
    code, err = run(evaluate.main, [ref, est], capsys)
    assert_one_line_error(code, err, message)


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("file-and-folder", "two files or two folders"),
    ("binary", "not a text f0 file"),
    ("broken-json", "not a melody JSON"),
    ("unmatched-folders", "names must match"),
    ("csv-under-a-file", "cannot write"),
])
def test_evaluate_bad_situations(case, message, tmp_path, capsys):
    ref = _ref(tmp_path, GOOD)
    est = _ref(tmp_path, GOOD, "pitch_ref.wav.txt")
    extra = []
    if case == "missing":
        est = tmp_path / "none.txt"
    elif case == "file-and-folder":
        est = tmp_path
    elif case == "binary":
        est.write_bytes(bytes(range(256)) * 4)
    elif case == "broken-json":
        est = _ref(tmp_path, "{not json", "pitch_ref.wav.json")
    elif case == "unmatched-folders":
        (tmp_path / "r").mkdir()
        (tmp_path / "e").mkdir()
        _ref(tmp_path / "r", GOOD, "a.csv")
        _ref(tmp_path / "e", GOOD, "pitch_b.wav.txt")
        ref, est = tmp_path / "r", tmp_path / "e"
    elif case == "csv-under-a-file":
        extra = ["--csv", tmp_path / "ref.txt" / "scores.csv"]
    code, err = run(evaluate.main, [ref, est, *extra], capsys)
    assert_one_line_error(code, err, message)


# ----------------------------------------------------------------------------- synth_testset.py

@pytest.mark.parametrize("kind", ["missing", "text-named-wav", "zero-bytes", "zero-samples", "nan-samples", "1-hz"])
def test_anasyn_bad_vocal(kind, tmp_path, capsys):
    path = bad_audio(kind, tmp_path)
    code, err = run(synth_cli.main, ["anasyn", "--vocal", path, "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, path.name, BAD_AUDIO[kind])


@pytest.mark.parametrize("case, message", [
    ("silent-vocal", "no voice found"),
    ("noise-vocal", "no voice found"),
    ("missing-accompaniment", "no such file"),
    ("length-mismatch", "differ in length"),
    ("no-such-stream", "no audio stream 7"),
    ("output-under-a-file", "cannot create output folder"),
    ("compose-missing-voices", "voice folder"),
    ("compose-no-voices", "no training voices"),
    ("compose-missing-accompaniment", "accompaniment folder"),
])
def test_synth_bad_situations(case, message, tmp_path, capsys):
    rate = 16000
    vocal = write_wav(tmp_path / "vocal.wav", harmonic_tone(220, 1.0, rate), rate)
    argv = ["anasyn", "--vocal", vocal, "-o", tmp_path / "out", "--sample-rate", rate]
    if case == "silent-vocal":
        write_wav(vocal, np.zeros(rate, np.float32), rate)
    elif case == "noise-vocal":
        write_wav(vocal, 0.1 * np.random.default_rng(0).standard_normal(rate).astype(np.float32), rate)
    elif case == "missing-accompaniment":
        argv += ["--accompaniment", tmp_path / "none.wav"]
    elif case == "length-mismatch":
        argv += ["--accompaniment", write_wav(tmp_path / "acc.wav", harmonic_tone(110, 2.5, rate), rate)]
    elif case == "no-such-stream":
        mp4 = tmp_path / "song.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(vocal), "-c:a", "aac", str(mp4)], check=True)
        argv = ["anasyn", "--vocal", mp4, "--vocal-stream", "7", "-o", tmp_path / "out"]
    elif case == "output-under-a-file":
        (tmp_path / "file").write_text("x")
        argv[-3] = tmp_path / "file" / "out"
    elif case.startswith("compose"):
        voices = tmp_path / "voices"
        voices.mkdir()
        accompaniment = tmp_path / "acc"
        accompaniment.mkdir()
        if case == "compose-missing-voices":
            voices = tmp_path / "nowhere"
        if case == "compose-missing-accompaniment":
            write_wav(voices / "v.wav", harmonic_tone(220, 1.0, rate), rate)
            accompaniment = tmp_path / "nowhere"
        argv = ["compose", "--voices", voices, "--accompaniment", accompaniment, "-o", tmp_path / "out",
                "--minutes", "0.1", "--workers", "1", "-q"]
    code, err = run(synth_cli.main, argv, capsys)
    assert_one_line_error(code, err, message)


# ----------------------------------------------------------------------------- trainers

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return make_tone_corpus(folder, n_train=1, n_val=1, seconds=0.5)


@pytest.mark.parametrize("case, message", [
    ("missing-manifest", "not found"),
    ("not-a-manifest", "not a manifest"),
    ("missing-audio", "no such file"),
    ("bad-label-columns", "expected 2 columns"),
    ("empty-split", "no tracks in split"),
    ("resume-nothing", "nothing to resume"),
    ("run-exists", "--resume"),
    ("negative-sigma", "sigma"),
    ("corrupt-checkpoint", "not a valid weights bundle"),
    ("folder-without-labels", "has a label"),
    ("folder-without-val", "has no validation split"),
    ("audio-is-text", "not a readable audio file"),
    ("run-dir-under-a-file", "cannot create output folder"),
    ("non-monotonic-label", "not increasing"),
    ("bad-filters", "four positive filter counts"),
    ("unknown-label-format", "invalid choice"),
])
def test_teacher_bad_situations(case, message, tmp_path, corpus, capsys):
    manifest = corpus
    run_dir = tmp_path / "run"
    extra = []
    if case == "missing-manifest":
        manifest = tmp_path / "none.csv"
    elif case == "not-a-manifest":
        manifest = _ref(tmp_path, "a,b\n1,2\n", "m.csv")
    elif case == "folder-without-val":
        manifest = corpus.parent / "train"
    elif case == "missing-audio":
        manifest = _ref(tmp_path, "id,split,audio,label\n"
                        f"x,train,{tmp_path}/gone.wav,{corpus.parent}/train/train_0.f0.txt\n"
                                  f"y,val,{corpus.parent}/val/val_0.wav,{corpus.parent}/val/val_0.f0.txt\n", "m.csv")
    elif case == "bad-label-columns":
        label = _ref(tmp_path, "0.00 0 1\n", "bad.f0.txt")
        manifest = _ref(tmp_path, f"id,split,audio,label\nx,train,{corpus.parent}/train/train_0.wav,{label}\n", "m.csv")
    elif case == "empty-split":
        extra = ["--train-split", "nothing"]
    elif case == "resume-nothing":
        extra = ["--resume"]
    elif case == "run-exists":
        run_dir.mkdir()
        (run_dir / "last.npz").write_bytes(b"x")
    elif case == "negative-sigma":
        extra = ["--sigma", "-0.5"]
    elif case == "corrupt-checkpoint":
        run_dir.mkdir()
        (run_dir / "last.npz").write_bytes(b"PK\x03\x04garbage")
        extra = ["--resume"]
    elif case == "folder-without-labels":
        folder = tmp_path / "songs"
        folder.mkdir()
        write_wav(folder / "a.wav", harmonic_tone(220, 0.5, 8000), 8000)
        manifest = folder
    elif case == "audio-is-text":
        fake = _ref(tmp_path, "not audio " * 50, "fake.wav")
        manifest = _ref(tmp_path, f"id,split,audio,label\nx,train,{fake},{corpus.parent}/train/train_0.f0.txt\n"
                                  f"y,val,{fake},{corpus.parent}/val/val_0.f0.txt\n", "m.csv")
    elif case == "run-dir-under-a-file":
        (tmp_path / "file").write_text("x")
        run_dir = tmp_path / "file" / "run"
    elif case == "non-monotonic-label":
        label = _ref(tmp_path, "0.00 0\n0.02 220\n0.01 220\n", "bad.f0.txt")
        manifest = _ref(tmp_path, f"id,split,audio,label\nx,train,{corpus.parent}/train/train_0.wav,{label}\n", "m.csv")
    elif case == "bad-filters":
        extra = ["--filters", "4,4"]
    elif case == "unknown-label-format":
        extra = ["--label-format", "rwc"]
    argv = ["--train", manifest, "--run-dir", run_dir, "--filters", "4,4,4,4", "--lstm-units", "4",
            "--cache-dir", tmp_path / "cache", "-q", *extra]
    code, err = run(train_teacher.main, argv, capsys)
    assert_one_line_error(code, err, message)


@pytest.mark.parametrize("case, message", [
    ("missing-teacher", "teacher bundle"),
    ("no-unlabeled", "no unlabeled audio"),
    ("missing-unlabeled", "no such file or folder"),
    ("no-validation", "validation data needed"),
    ("labeled-folder-without-val", "has no validation split"),
    ("corrupt-teacher", "not a valid weights bundle"),
    ("teacher-is-folder", "is a folder"),
    ("empty-unlabeled-folder", "no unlabeled audio"),
    ("unlabeled-text-named-wav", "not a readable audio file"),
    ("run-exists", "--resume"),
    ("run-dir-under-a-file", "cannot create output folder"),
    ("missing-labeled", "not found"),
    ("bad-shard", "shard"),
    ("bad-ratio", "ratio"),
    ("unknown-setup", "invalid choice"),
    ("zero-k", "positive integer"),
])
def test_student_bad_situations(case, message, tmp_path, corpus, capsys):
    teacher = save_random_bundle(tmp_path / "teacher.npz")
    argv = ["--teacher", teacher, "--labeled", corpus, "--unlabeled", corpus.parent / "val",
            "--run-dir", tmp_path / "run", "--cache-dir", tmp_path / "cache", "-q"]
    if case == "missing-teacher":
        argv[1] = tmp_path / "none.npz"
    elif case == "no-unlabeled":
        argv = argv[:4] + argv[6:]
    elif case == "missing-unlabeled":
        argv[5] = tmp_path / "nowhere"
    elif case == "no-validation":
        argv = argv[:2] + argv[4:]
    elif case == "labeled-folder-without-val":
        argv[3] = corpus.parent / "train"
    elif case == "corrupt-teacher":
        teacher.write_bytes(teacher.read_bytes()[:300])
    elif case == "teacher-is-folder":
        argv[1] = tmp_path
    elif case == "empty-unlabeled-folder":
        (tmp_path / "nothing").mkdir()
        argv[5] = tmp_path / "nothing"
    elif case == "unlabeled-text-named-wav":
        (tmp_path / "u").mkdir()
        (tmp_path / "u" / "fake.wav").write_text("not audio " * 50)
        argv[5] = tmp_path / "u"
    elif case == "run-exists":
        (tmp_path / "run" / "iter1").mkdir(parents=True)
        (tmp_path / "run" / "iter1" / "last.npz").write_bytes(b"x")
    elif case == "run-dir-under-a-file":
        (tmp_path / "file").write_text("x")
        argv[7] = tmp_path / "file" / "run"
    elif case == "missing-labeled":
        argv[3] = tmp_path / "none.csv"
    elif case == "bad-shard":
        argv += ["--shard", "2/2"]
    elif case == "bad-ratio":
        argv += ["--ratio", "1-1"]
    elif case == "unknown-setup":
        argv += ["--setup", "mean-teacher"]
    elif case == "zero-k":
        argv += ["--k", "0"]
    code, err = run(student_cli.main, argv, capsys)
    assert_one_line_error(code, err, message)


# ----------------------------------------------------------------------------- numeric options, every CLI

NUMERIC_CASES = [
    (extract_cli.main, ["-p", "x.wav", "--batch-size", "0"]),
    (extract_cli.main, ["-p", "x.wav", "--batch-size", "100000"]),
    (extract_cli.main, ["-p", "x.wav", "--median-filter", "4"]),
    (extract_cli.main, ["-p", "x.wav", "--voicing-threshold", "nan"]),
    (synth_cli.main, ["anasyn", "--vocal", "v.wav", "--ratio-db", "nan"]),
    (synth_cli.main, ["anasyn", "--vocal", "v.wav", "--ratio-db", "inf"]),
    (synth_cli.main, ["anasyn", "--vocal", "v.wav", "--transpose", "60"]),
    (synth_cli.main, ["anasyn", "--vocal", "v.wav", "--sample-rate", "100"]),
    (synth_cli.main, ["anasyn", "--vocal", "v.wav", "--sample-rate", "8000"]),
    (synth_cli.main, ["compose", "--minutes", "inf"]),
    (synth_cli.main, ["compose", "--minutes", "0"]),
    (synth_cli.main, ["compose", "--sample-rate", "100"]),
    (synth_cli.main, ["compose", "--workers", "0"]),
    (synth_cli.main, ["compose", "--instrumental-share", "1.5"]),
    (synth_cli.main, ["compose", "--seed", "-1"]),
    (train_teacher.main, ["--train", "m.csv", "--run-dir", "r", "--sigma", "nan"]),
    (train_teacher.main, ["--train", "m.csv", "--run-dir", "r", "--batch-size", "100000"]),
    (train_teacher.main, ["--train", "m.csv", "--run-dir", "r", "--lr", "-1"]),
    (train_teacher.main, ["--train", "m.csv", "--run-dir", "r", "--max-minutes", "nan"]),
    (student_cli.main, ["--teacher", "t.npz", "--run-dir", "r", "--unlabeled-weight", "nan"]),
    (student_cli.main, ["--teacher", "t.npz", "--run-dir", "r", "--unlabeled-weight", "-5"]),
    (student_cli.main, ["--teacher", "t.npz", "--run-dir", "r", "--iterations", "0"]),
]


@pytest.mark.parametrize("main, argv", NUMERIC_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_numeric_options_are_checked_before_any_work(main, argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run(main, argv, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:"), err
    assert "expected" in err or "must be" in err
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_instrumental_leads_without_a_pool_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run(synth_cli.main, ["compose", "--instrumental-leads", "-o", "corpus"], capsys)
    assert_one_line_error(code, err, "--instrumental-leads needs --music")
    assert list(tmp_path.iterdir()) == []


def test_vibrato_without_a_pool_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run(synth_cli.main, ["compose", "--vibrato-share", "0.5", "-o", "corpus"], capsys)
    assert_one_line_error(code, err, "--vibrato-share needs --music")
    assert list(tmp_path.iterdir()) == []
    for mode in (["compose"], ["originals", "--music", "pool"]):  # checked before the pool is read
        code, err = run(synth_cli.main, [*mode, "--vibrato-cents", "40", "10", "-o", "corpus"], capsys)
        assert_one_line_error(code, err, "--vibrato-cents: the low end 40 is above the high end 10")
        assert list(tmp_path.iterdir()) == []


def test_a_broken_corpus_settings_file_is_named_and_kept(tmp_path):
    """compose.json / originals.json that is not a JSON object: an error naming it, the folder untouched."""
    from vocal_melody.lab.synth.compose import check_corpus_settings, read_settings

    broken = {"compose.json": "[1]\n", "originals.json": "{oops"}
    for name, text in broken.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(MelodyError, match=f"{name}: not a settings file"):
            read_settings(tmp_path / name)
    with pytest.raises(MelodyError, match="compose.json: not a settings file"):
        check_corpus_settings(tmp_path, {"seed": 0})  # compose's check before it writes anything
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(broken)
    assert all((tmp_path / name).read_text() == text for name, text in broken.items())


def test_nan_weights_are_refused_at_load(tmp_path, bundle, capsys):
    from vocal_melody.bundle import read_bundle, save_bundle

    good = read_bundle(bundle)
    weights = [w.copy() for w in good.weights]
    weights[3][...] = np.nan
    broken = save_bundle(tmp_path / "nan.npz", weights, good.mean, good.std, good.config)
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(220, 0.3, 8000), 8000)
    code, err = run(extract_cli.main, ["-p", wav, "-o", tmp_path / "out", "-w", broken, "-q"], capsys)
    assert_one_line_error(code, err, "nan.npz", "NaN or infinite")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_evaluate_never_overwrites_an_input_with_its_table(tmp_path, capsys):
    ref = tmp_path / "songREF.txt"
    ref.write_text("0.00 220.0\n0.01 220.0\n")
    est = tmp_path / "pitch_song.wav.txt"
    est.write_text("0.00 220.0000\n0.01 0.0000\n")
    before = ref.read_text()
    code, err = run(evaluate.main, [ref, est, "--csv", ref], capsys)
    assert_one_line_error(code, err, "--csv", "one of the files being scored")
    assert ref.read_text() == before


def test_anasyn_name_cannot_leave_the_output_folder(tmp_path, capsys):
    code, err = run(synth_cli.main, ["anasyn", "--vocal", tmp_path / "v.wav", "--name", "../escaped",
                                         "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, "--name", "without folders")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped_mix.wav").exists()


def test_teacher_output_is_checked_before_training(tmp_path, corpus, capsys):
    manifest = corpus
    before = manifest.read_text()
    code, err = run(train_teacher.main, ["--train", manifest, "--run-dir", tmp_path / "run", "--output", manifest,
                                         "-q"], capsys)
    assert_one_line_error(code, err, "--output", "one of the inputs")
    assert manifest.read_text() == before and not (tmp_path / "run" / "last.npz").exists()
    existing = tmp_path / "mine.npz"
    existing.write_text("my file")
    code, err = run(train_teacher.main, ["--train", manifest, "--run-dir", tmp_path / "run2", "--output", existing,
                                         "-q"], capsys)
    assert_one_line_error(code, err, "already exists")
    assert existing.read_text() == "my file"


@pytest.mark.parametrize("gpu, message", [("abc", "expected GPU indices"), ("0", "finds 0 of the 1 GPUs")])
def test_a_gpu_that_is_not_there_is_one_line(gpu, message, tmp_path, bundle, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(220, 0.3, 8000), 8000)
    code, err = run(extract_cli.main, ["-p", wav, "-o", tmp_path / "out", "-w", bundle, "-gpu", gpu, "-q"], capsys)
    assert code != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_truncated_wav_is_used_as_far_as_it_goes_with_a_warning(tmp_path, bundle, capsys):
    full = write_wav(tmp_path / "full.wav", harmonic_tone(220, 2.0, 8000), 8000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:44 + 2 * 8000])  # header for 2 s, 1 s of samples
    code, err = run(extract_cli.main, ["-p", cut, "-o", tmp_path / "out", "-w", bundle, "-q"], capsys)
    assert code == 0 and "Traceback" not in err
    assert "warning: " + str(cut) + ": truncated file: its header promises 2.00 s, it holds 1.00 s" in err
    lines = (tmp_path / "out" / "pitch_cut.wav.txt").read_text().splitlines()
    assert len(lines) == 1 + 8000 // 80


@pytest.mark.parametrize("label, message", [
    ("short", "covers 0.10 s but the audio lasts 1.01 s"),
    ("long", "covers 100.00 s but the audio lasts 1.01 s"),
    ("negative", "every f0 is negative"),
])
def test_training_labels_must_fit_their_audio(label, message, tmp_path, capsys):
    (tmp_path / "c" / "train").mkdir(parents=True)
    write_wav(tmp_path / "c" / "train" / "a.wav", harmonic_tone(220, 1.0, 8000), 8000)
    frames = {"short": 10, "long": 10000, "negative": 101}[label]
    f0 = -220.0 if label == "negative" else 220.0
    (tmp_path / "c" / "train" / "a.f0.txt").write_text("".join(f"{i / 100:.2f} {f0:.4f}\n" for i in range(frames)))
    manifest = tmp_path / "c" / "manifest.csv"
    manifest.write_text("id,split,audio,label\na,train,train/a.wav,train/a.f0.txt\na2,val,train/a.wav,train/a.f0.txt\n")
    code, err = run(train_teacher.main, ["--train", manifest, "--run-dir", tmp_path / "run", "--cache-dir",
                                         tmp_path / "cache", "-q"], capsys)
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "run" / "last.npz").exists()


def test_manifest_with_a_byte_order_mark_and_a_row_without_label(tmp_path, corpus):
    from vocal_melody.lab.corpora.datasets import read_manifest

    text = corpus.read_text()
    bom = corpus.parent / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert len(read_manifest(bom)) == len(read_manifest(corpus))
    lines = text.splitlines()
    fields = lines[1].split(",")
    lines[1] = ",".join(fields[:3] + [""])
    broken = corpus.parent / "nolabel.csv"
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(MelodyError, match="nolabel.csv: row 2 has no label file"):
        read_manifest(broken)


def test_student_resume_without_a_run_is_one_line(tmp_path, bundle, corpus, capsys):
    code, err = run(student_cli.main, ["--teacher", bundle, "--labeled", corpus, "--unlabeled", corpus.parent,
                                         "--run-dir", tmp_path / "run", "--resume", "-q"], capsys)
    assert_one_line_error(code, err, "nothing to resume")


@pytest.mark.parametrize("output, message", [("noext", "sound-file extension"), ("out.xyz", "sound-file extension"),
                                             ("in.wav", "would overwrite the input")])
def test_augment_output_is_checked_before_work(output, message, tmp_path, capsys):
    from vocal_melody.lab.cli import augment as augment_cli

    source = write_wav(tmp_path / "in.wav", harmonic_tone(220, 0.5, 16000), 16000)
    before = source.read_bytes()
    code, err = run(augment_cli.main, [source, tmp_path / output], capsys)
    assert_one_line_error(code, err, message)
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_weights_that_do_not_fit_their_model_fail_once_before_any_file(tmp_path, bundle, capsys):
    from vocal_melody.bundle import read_bundle, save_bundle

    good = read_bundle(bundle)
    config = dict(good.config, model={"filters": [8, 8, 8, 8], "lstm_units": 4})
    broken = save_bundle(tmp_path / "mismatch.npz", good.weights, good.mean, good.std, config)
    silent = write_wav(tmp_path / "silent.wav", np.zeros(8000, np.float32), 8000)
    tone = write_wav(tmp_path / "tone.wav", harmonic_tone(220, 0.3, 8000), 8000)
    code, err = run(extract_cli.main, ["-p", silent, tone, "-o", tmp_path / "out", "-w", broken, "--engine", "tf",
                                      "-q"], capsys)
    assert_one_line_error(code, err, "mismatch.npz", "do not fit")
    assert err.count("error:") == 1
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_an_empty_shard_says_so(tmp_path, bundle, capsys):
    files = [write_wav(tmp_path / f"u{i}.wav", harmonic_tone(220, 0.3, 8000), 8000) for i in range(2)]
    code, err = run(student_cli.main, ["--teacher", bundle, "--unlabeled", *files, "--run-dir", tmp_path / "r",
                                         "--prepare-only", "--shard", "3/4", "-q"], capsys)
    assert_one_line_error(code, err, "holds no unlabeled file", "fewer files than shards")


@pytest.mark.parametrize("cli", ["anasyn", "augment"])
def test_a_failed_sound_write_names_the_file(cli, tmp_path, capsys, monkeypatch):
    """libsndfile reports a full disk only as "System error."; the file and the free space must show."""
    from vocal_melody.lab.cli import augment as augment_cli

    def full_disk(*args, **kwargs):
        raise soundfile.LibsndfileError(2, "Error writing: ")

    source = write_wav(tmp_path / "v.wav", harmonic_tone(220, 1.0, 22050) * np.hanning(22050), 22050)
    monkeypatch.setattr(soundfile, "write", full_disk)
    if cli == "anasyn":
        code, err = run(synth_cli.main, ["anasyn", "--vocal", source, "-o", tmp_path / "out"], capsys)
        name = "v_mix.wav"
    else:
        code, err = run(augment_cli.main, [source, tmp_path / "aug.wav"], capsys)
        name = "aug.wav"
    assert_one_line_error(code, err, f"cannot write {tmp_path / ('out' if cli == 'anasyn' else '')}".rstrip("/"),
                          name, "System error", "MB free")
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(name))


def test_a_cut_ogg_is_used_as_far_as_it_goes_with_a_warning(tmp_path, bundle, capsys):
    full = tmp_path / "full.ogg"
    noisy = harmonic_tone(220, 10.0, 16000) + 0.05 * np.random.default_rng(0).standard_normal(160000)
    soundfile.write(str(full), noisy.astype(np.float32), 16000, format="OGG")
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(full.read_bytes()[:full.stat().st_size * 6 // 10])
    code, err = run(extract_cli.main, ["-p", full, cut, "-o", tmp_path / "out", "-w", bundle, "-q"], capsys)
    assert code == 0 and "Traceback" not in err
    assert err.count("warning:") == 1 and "cut.ogg: truncated file: the Ogg stream ends without its last page" in err


# ----------------------------------------------------------------------------- augment.py

AUGMENT_AUDIO = {**{k: v for k, v in BAD_AUDIO.items() if k != "folder-without-audio"},
                 "folder-without-audio": "is a folder"}


@pytest.mark.parametrize("kind", sorted(AUGMENT_AUDIO))
def test_augment_bad_input_audio(kind, tmp_path, capsys):
    from vocal_melody.lab.cli import augment as augment_cli

    source = bad_audio(kind, tmp_path)
    code, err = run(augment_cli.main, [source, tmp_path / "out.wav"], capsys)
    assert_one_line_error(code, err, AUGMENT_AUDIO[kind])
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("case, message", [
    ("seed-text", "--seed"), ("seed-negative", "--seed"), ("missing-output-folder", "no such folder"),
    ("output-is-a-folder", "is a folder"), ("unknown-option", "unrecognized arguments"),
    ("low-rate", "too low"), ("rate-below-the-effects", "too low for these effects")])
def test_augment_bad_situations(case, message, tmp_path, capsys):
    from vocal_melody.lab.cli import augment as augment_cli

    source = write_wav(tmp_path / "in.wav", harmonic_tone(220, 0.5, 16000), 16000)
    output, extra = tmp_path / "out.wav", []
    if case == "seed-text":
        extra = ["--seed", "abc"]
    elif case == "seed-negative":
        extra = ["--seed", "-3"]
    elif case == "missing-output-folder":
        output = tmp_path / "nope" / "out.wav"
    elif case == "output-is-a-folder":
        output = tmp_path / "folder.wav"
        output.mkdir()
    elif case == "unknown-option":
        extra = ["--speed", "2"]
    elif case == "low-rate":
        source = write_wav(tmp_path / "in.wav", harmonic_tone(220, 0.5, 2000), 2000)
    elif case == "rate-below-the-effects":  # sox failed on some chains at 4 kHz (a shelf above Nyquist)
        source = write_wav(tmp_path / "in.wav", harmonic_tone(220, 0.5, 4000), 4000)
    code, err = run(augment_cli.main, [source, output, *extra], capsys)
    assert code != 0 and "Traceback" not in err
    assert message in err, err
    assert not (tmp_path / "out.wav").exists()
