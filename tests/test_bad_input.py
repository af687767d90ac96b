"""The bad-input matrix: every CLI answers bad input with one line naming the file and the problem.

Most cases are rows of tables: (case, the command line changed from the table's base, the files the case makes,
the expected line). ``{tmp}`` is the test's folder, ``{bundle}`` a small weights bundle, ``{corpus}`` a tiny
labeled corpus's manifest and ``{corpus_dir}`` its folder. After every refused command the files the case made
are as they were, and nothing new is left beside them (caches aside).
"""

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


# ----------------------------------------------------------------------------- tables

DIR = object()
"""A file table's value: make a folder."""
FLAG = True
"""An option table's value: the option alone (``--resume``)."""
NOT_AUDIO = "not audio " * 50


def tone(f0, seconds, rate):
    return lambda path, values: write_wav(path, harmonic_tone(f0, seconds, rate), rate)


def samples(make, rate, subtype=None):
    """A sound file of the samples ``make()`` returns."""
    return lambda path, values: soundfile.write(str(path), make(), rate, **({"subtype": subtype} if subtype else {}))


def truncated(source, n_bytes):
    """The first bytes of another file (``{bundle}``...)."""
    return lambda path, values: path.write_bytes(open(source.format(**values), "rb").read()[:n_bytes])


def aac_of(wav_name):
    def make(path, values):
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(path.parent / wav_name), "-c:a", "aac", str(path)],
                       check=True)
    return make


def cases(rows):
    """A table's rows as pytest parameters, each named by its first column."""
    return [pytest.param(*row[1:], id=row[0]) for row in rows]


def make_files(root, files, values):
    """Make a case's files, in order: {name under root: text (``{...}`` filled in), bytes, DIR or a maker}."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is DIR:
            path.mkdir(exist_ok=True)
        elif callable(content):
            content(path, values)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.format(**values))


def changed(base, changes):
    """``base`` argv with options changed: a new value, None (the option and its value left out), FLAG (alone)."""
    argv = list(base)
    for option, value in changes.items():
        if option in argv:
            index = argv.index(option)
            takes_value = index + 1 < len(argv) and not argv[index + 1].startswith("-")
            del argv[index:index + (2 if takes_value else 1)]
            if value is not None:
                argv[index:index] = [option] if value is FLAG else [option, value]
        elif value is not None:
            argv += [option] if value is FLAG else [option, value]
    return argv


def snapshot(root, skip=("cache",)):
    """Every file's bytes and every folder (None) under root: an empty folder left behind counts too."""
    return {p.relative_to(root): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))
            if p.relative_to(root).parts[0] not in skip}


def refuse(main, argv, files, message, root, values, capsys, *, nothing_left=True):
    """Make the files, run the command, and check its one-line error and that nothing was changed or left."""
    make_files(root, files, values)
    before = snapshot(root)
    code, err = run(main, [a.format(**values) for a in map(str, argv)], capsys)
    assert_one_line_error(code, err, *([message] if isinstance(message, str) else message))
    after = snapshot(root)
    assert {name: after.get(name) for name in before} == before, "a file of the user's was changed"
    if nothing_left:
        assert sorted(after) == sorted(before), f"left behind: {sorted(set(after) - set(before))}"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return save_random_bundle(tmp_path_factory.mktemp("w") / "tiny.npz")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return make_tone_corpus(folder, n_train=1, n_val=1, seconds=0.5)


@pytest.fixture
def values(tmp_path, bundle, corpus):
    return {"tmp": tmp_path, "bundle": bundle, "corpus": corpus, "corpus_dir": corpus.parent}


# ----------------------------------------------------------------------------- bad audio, every reader of it

def _with_nan(value, index):
    def make():
        audio = harmonic_tone(220, 0.5, 8000)
        audio[index] = value
        return audio
    return make


BAD_AUDIO = {  # kind: (input name, files, message)
    "missing": ("missing.wav", {}, "no such file"),
    "folder-without-audio": ("empty_folder", {"empty_folder": DIR}, "no audio files found"),
    "text-named-wav": ("input.wav", {"input.wav": "definitely not audio\n" * 40}, "not a readable audio file"),
    "corrupt-mp3": ("corrupt.mp3", {"corrupt.mp3": b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8},
                    "not a readable audio file"),
    "zero-bytes": ("input.wav", {"input.wav": b""}, "empty (0 bytes)"),
    "zero-samples": ("input.wav", {"input.wav": samples(lambda: np.zeros(0, np.float32), 8000)}, "no samples"),
    "nan-samples": ("input.wav", {"input.wav": samples(_with_nan(np.nan, 100), 8000, "FLOAT")}, "NaN or infinite"),
    "inf-samples": ("input.wav", {"input.wav": samples(_with_nan(np.inf, 10), 8000, "FLOAT")}, "NaN or infinite"),
    "1-hz": ("input.wav", {"input.wav": samples(lambda: np.zeros(10, np.float32), 1)}, "too low"),
}


@pytest.mark.parametrize("kind", sorted(BAD_AUDIO))
def test_extraction_bad_audio(kind, tmp_path, values, capsys):
    name, files, message = BAD_AUDIO[kind]
    refuse(extract_cli.main, ["-p", "{tmp}/" + name, "-o", "{tmp}/out", "-w", "{bundle}", "-q"], files,
           [name, message], tmp_path, values, capsys)
    assert not (tmp_path / "out").exists()  # nothing written, not even an empty folder


@pytest.mark.parametrize("kind", ["missing", "text-named-wav", "zero-bytes", "zero-samples", "nan-samples", "1-hz"])
def test_anasyn_bad_vocal(kind, tmp_path, values, capsys):
    name, files, message = BAD_AUDIO[kind]
    refuse(synth_cli.main, ["anasyn", "--vocal", "{tmp}/" + name, "-o", "{tmp}/out"], files, [name, message],
           tmp_path, values, capsys)


AUGMENT_AUDIO = {**BAD_AUDIO, "folder-without-audio": ("empty_folder", {"empty_folder": DIR}, "is a folder")}


@pytest.mark.parametrize("kind", sorted(AUGMENT_AUDIO))
def test_augment_bad_input_audio(kind, tmp_path, values, capsys):
    from vocal_melody.lab.cli import augment as augment_cli

    name, files, message = AUGMENT_AUDIO[kind]
    refuse(augment_cli.main, ["{tmp}/" + name, "{tmp}/out.wav"], files, message, tmp_path, values, capsys)


# ----------------------------------------------------------------------------- melodyExtraction_NS.py

def _mp3(tmp_path, seconds=1.0):
    wav = write_wav(tmp_path / "src.wav", harmonic_tone(220, seconds, 22050), 22050)
    mp3 = tmp_path / "song.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(mp3)], check=True)
    wav.unlink()
    return mp3


def _cut_mp3(path, values):
    full = _mp3(path.parent, 2.0)
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])


VALID_EDGE_CASES = {  # kind: (file a.wav or cut.mp3, frames written; None: about half of the 2 s encoded)
    "silence": (samples(lambda: np.zeros(8000, np.float32), 8000), 101),
    "shorter-than-a-hop": (samples(lambda: np.zeros(30, np.float32), 8000), 1),
    "192-khz": (tone(300, 0.5, 192000), 51),
    "8-channels": (samples(lambda: np.tile(harmonic_tone(300, 0.25, 16000)[:, None], (1, 8)), 16000), 26),
    "truncated-mp3": (_cut_mp3, None),
}


@pytest.mark.parametrize("kind", sorted(VALID_EDGE_CASES))
def test_extraction_valid_edge_cases(kind, tmp_path, bundle, capsys):
    make, frames = VALID_EDGE_CASES[kind]
    path = tmp_path / ("cut.mp3" if kind == "truncated-mp3" else "a.wav")
    make(path, {})
    code, err = run(extract_cli.main, ["-p", path, "-o", tmp_path / "out", "-w", bundle, "-q"], capsys)
    assert code == 0, err
    lines = (tmp_path / "out" / f"pitch_{path.name}.txt").read_text().splitlines()
    if frames is not None:
        assert len(lines) == frames
    else:
        assert 40 < len(lines) < 160
    if kind in ("silence", "shorter-than-a-hop"):
        assert all(line.endswith(" 0.0000") for line in lines)  # all unvoiced


EXTRACTION_BASE = ["-p", "{tmp}/a.wav", "-o", "{tmp}/out", "-w", "{bundle}"]
EXTRACTION_SITUATIONS = [  # (case, options changed, files besides a.wav, message)
    ("missing-weights", {"-w": "{tmp}/none.npz"}, {}, "not found: train one with"),
    ("corrupt-weights", {"-w": "{tmp}/bad.npz"}, {"bad.npz": truncated("{bundle}", 5000)},
     "not a valid weights bundle"),
    ("weights-folder", {"-w": "{tmp}"}, {}, "is a folder"),
    ("output-under-a-file", {"-o": "{tmp}/file/out"}, {"file": "x"}, "cannot create output folder"),
    ("output-is-a-file", {"-o": "{tmp}/file"}, {"file": "x"}, "is a file, not a folder"),
    ("weights-and-model", {"--model": "full"}, {}, "give a weights file or a model capacity, not both"),
    ("unknown-model", {"-w": None, "--model": "huge"}, {}, "invalid choice"),
    ("unknown-engine", {"--engine": "cuda"}, {}, "invalid choice"),
    ("gpu-not-a-number", {"-gpu": "abc"}, {}, "expected GPU indices"),
    ("gpu-not-there", {"-gpu": "0"}, {}, "finds 0 of the 1 GPUs"),
]


@pytest.mark.parametrize("changes, files, message", cases(EXTRACTION_SITUATIONS))
def test_extraction_bad_situations(changes, files, message, tmp_path, values, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    refuse(extract_cli.main, changed(EXTRACTION_BASE, changes), {"a.wav": tone(220, 0.3, 8000), **files}, message,
           tmp_path, values, capsys)


def test_extraction_full_disk_leaves_no_partial_file(tmp_path, bundle, capsys, monkeypatch):
    from vocal_melody import fileio

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", no_space)
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(220, 0.3, 8000), 8000)
    code, err = run(extract_cli.main, ["-p", wav, "-o", tmp_path / "out", "-w", bundle, "-q"], capsys)
    assert_one_line_error(code, err, "pitch_a.wav.txt", "No space left on device")
    assert not (tmp_path / "out").exists()  # no partial file, and no folder it made for nothing


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
def test_evaluate_bad_files(ref_text, est_text, message, tmp_path, values, capsys):
    refuse(evaluate.main, ["{tmp}/ref.txt", "{tmp}/pitch_x.wav.txt"],
           {"ref.txt": ref_text, "pitch_x.wav.txt": est_text}, message, tmp_path, values, capsys)


PAIR = {"ref.txt": GOOD, "pitch_ref.wav.txt": GOOD}
EVALUATE_SITUATIONS = [  # (case, argv, files, message)
    ("missing", ["{tmp}/ref.txt", "{tmp}/none.txt"], PAIR, "no such file"),
    ("file-and-folder", ["{tmp}/ref.txt", "{tmp}"], PAIR, "two files or two folders"),
    ("binary", ["{tmp}/ref.txt", "{tmp}/pitch_ref.wav.txt"], {**PAIR, "pitch_ref.wav.txt": bytes(range(256)) * 4},
     "not a text f0 file"),
    ("broken-json", ["{tmp}/ref.txt", "{tmp}/pitch_ref.wav.json"], {**PAIR, "pitch_ref.wav.json": b"{not json"},
     "not a melody JSON"),
    ("unmatched-folders", ["{tmp}/r", "{tmp}/e"], {"r/a.csv": GOOD, "e/pitch_b.wav.txt": GOOD}, "names must match"),
    ("csv-under-a-file", ["{tmp}/ref.txt", "{tmp}/pitch_ref.wav.txt", "--csv", "{tmp}/ref.txt/scores.csv"], PAIR,
     "cannot write"),
    ("csv-is-an-input", ["{tmp}/ref.txt", "{tmp}/pitch_ref.wav.txt", "--csv", "{tmp}/ref.txt"], PAIR,
     ["--csv", "one of the files being scored"]),
]


@pytest.mark.parametrize("argv, files, message", cases(EVALUATE_SITUATIONS))
def test_evaluate_bad_situations(argv, files, message, tmp_path, values, capsys):
    refuse(evaluate.main, argv, files, message, tmp_path, values, capsys)


# ----------------------------------------------------------------------------- synth_testset.py

RATE = 16000
ANASYN_BASE = ["anasyn", "--vocal", "{tmp}/vocal.wav", "-o", "{tmp}/out", "--sample-rate", str(RATE)]
ANASYN_SITUATIONS = [  # (case, options changed, files (vocal.wav: a tone unless given), message)
    ("silent-vocal", {}, {"vocal.wav": samples(lambda: np.zeros(RATE, np.float32), RATE)}, "no voice found"),
    ("noise-vocal", {}, {"vocal.wav": samples(
        lambda: 0.1 * np.random.default_rng(0).standard_normal(RATE).astype(np.float32), RATE)}, "no voice found"),
    ("missing-accompaniment", {"--accompaniment": "{tmp}/none.wav"}, {}, "no such file"),
    ("length-mismatch", {"--accompaniment": "{tmp}/acc.wav"}, {"acc.wav": tone(110, 2.5, RATE)}, "differ in length"),
    ("no-such-stream", {"--vocal": "{tmp}/song.mp4", "--vocal-stream": "7", "--sample-rate": None},
     {"song.mp4": aac_of("vocal.wav")}, "no audio stream 7"),
    ("output-under-a-file", {"-o": "{tmp}/file/out"}, {"file": "x"}, "cannot create output folder"),
    ("name-leaves-the-folder", {"--name": "../escaped"}, {}, ["--name", "without folders"]),
]


@pytest.mark.parametrize("changes, files, message", cases(ANASYN_SITUATIONS))
def test_anasyn_bad_situations(changes, files, message, tmp_path, values, capsys):
    refuse(synth_cli.main, changed(ANASYN_BASE, changes), {"vocal.wav": tone(220, 1.0, RATE), **files}, message,
           tmp_path, values, capsys)


COMPOSE_BASE = ["compose", "--voices", "{tmp}/voices", "--accompaniment", "{tmp}/acc", "-o", "{tmp}/out",
                "--minutes", "0.1", "--workers", "1", "-q"]
COMPOSE_SITUATIONS = [  # (case, options changed, files besides the folders voices/ and acc/, message)
    ("missing-voices", {"--voices": "{tmp}/nowhere"}, {}, "voice folder"),
    ("no-voices", {}, {}, "no training voices"),
    ("missing-accompaniment", {"--accompaniment": "{tmp}/nowhere"}, {"voices/v.wav": tone(220, 1.0, RATE)},
     "accompaniment folder"),
    ("leads-without-a-pool", {"--instrumental-leads": FLAG}, {}, "--instrumental-leads needs --music"),
    ("vibrato-without-a-pool", {"--vibrato-share": "0.5"}, {}, "--vibrato-share needs --music"),
]


@pytest.mark.parametrize("changes, files, message", cases(COMPOSE_SITUATIONS))
def test_compose_bad_situations(changes, files, message, tmp_path, values, capsys):
    refuse(synth_cli.main, changed(COMPOSE_BASE, changes), {"voices": DIR, "acc": DIR, **files}, message,
           tmp_path, values, capsys)


def test_vibrato_range_is_checked_before_the_pool_is_read(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for mode in (["compose"], ["originals", "--music", "pool"]):
        code, err = run(synth_cli.main, [*mode, "--vibrato-cents", "40", "10", "-o", "corpus"], capsys)
        assert_one_line_error(code, err, "--vibrato-cents: the low end 40 is above the high end 10")
        assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- trainers

CSV_HEAD = "id,split,audio,label\n"
TEACHER_BASE = ["--train", "{corpus}", "--run-dir", "{tmp}/run", "--filters", "4,4,4,4", "--lstm-units", "4",
                "--cache-dir", "{tmp}/cache", "-q"]
TEACHER_SITUATIONS = [  # (case, options changed, files, message)
    ("missing-manifest", {"--train": "{tmp}/none.csv"}, {}, "not found"),
    ("not-a-manifest", {"--train": "{tmp}/m.csv"}, {"m.csv": "a,b\n1,2\n"}, "not a manifest"),
    ("missing-audio", {"--train": "{tmp}/m.csv"}, {"m.csv": CSV_HEAD +
     "x,train,{tmp}/gone.wav,{corpus_dir}/train/train_0.f0.txt\ny,val,{corpus_dir}/val/val_0.wav,"
     "{corpus_dir}/val/val_0.f0.txt\n"}, "no such file"),
    ("bad-label-columns", {"--train": "{tmp}/m.csv"}, {"bad.f0.txt": "0.00 0 1\n", "m.csv": CSV_HEAD +
     "x,train,{corpus_dir}/train/train_0.wav,{tmp}/bad.f0.txt\n"}, "expected 2 columns"),
    ("non-monotonic-label", {"--train": "{tmp}/m.csv"}, {"bad.f0.txt": "0.00 0\n0.02 220\n0.01 220\n",
     "m.csv": CSV_HEAD + "x,train,{corpus_dir}/train/train_0.wav,{tmp}/bad.f0.txt\n"}, "not increasing"),
    ("audio-is-text", {"--train": "{tmp}/m.csv"}, {"fake.wav": NOT_AUDIO, "m.csv": CSV_HEAD +
     "x,train,{tmp}/fake.wav,{corpus_dir}/train/train_0.f0.txt\ny,val,{tmp}/fake.wav,{corpus_dir}/val/val_0.f0.txt\n"},
     "not a readable audio file"),
    ("empty-split", {"--train-split": "nothing"}, {}, "no tracks in split"),
    ("folder-without-val", {"--train": "{corpus_dir}/train"}, {}, "has no validation split"),
    ("folder-without-labels", {"--train": "{tmp}/songs"}, {"songs/a.wav": tone(220, 0.5, 8000)}, "has a label"),
    ("resume-nothing", {"--resume": FLAG}, {}, "nothing to resume"),
    ("run-exists", {}, {"run/last.npz": b"x"}, "--resume"),
    ("corrupt-checkpoint", {"--resume": FLAG}, {"run/last.npz": b"PK\x03\x04garbage"}, "not a valid weights bundle"),
    ("run-dir-under-a-file", {"--run-dir": "{tmp}/file/run"}, {"file": "x"}, "cannot create output folder"),
    ("output-is-an-input", {"--train": "{tmp}/m.csv", "--output": "{tmp}/m.csv"}, {"m.csv": CSV_HEAD +
     "x,train,{corpus_dir}/train/train_0.wav,{corpus_dir}/train/train_0.f0.txt\n"}, ["--output", "one of the inputs"]),
    ("output-exists", {"--output": "{tmp}/mine.npz"}, {"mine.npz": "my file"}, "already exists"),
    ("negative-sigma", {"--sigma": "-0.5"}, {}, "sigma"),
    ("bad-filters", {"--filters": "4,4"}, {}, "four positive filter counts"),
    ("unknown-label-format", {"--label-format": "rwc"}, {}, "invalid choice"),
]


@pytest.mark.parametrize("changes, files, message", cases(TEACHER_SITUATIONS))
def test_teacher_bad_situations(changes, files, message, tmp_path, values, capsys):
    refuse(train_teacher.main, changed(TEACHER_BASE, changes), files, message, tmp_path, values, capsys)


STUDENT_BASE = ["--teacher", "{bundle}", "--labeled", "{corpus}", "--unlabeled", "{corpus_dir}/val",
                "--run-dir", "{tmp}/run", "--cache-dir", "{tmp}/cache", "-q"]
STUDENT_SITUATIONS = [  # (case, options changed, files, message)
    ("missing-teacher", {"--teacher": "{tmp}/none.npz"}, {}, "teacher bundle"),
    ("corrupt-teacher", {"--teacher": "{tmp}/bad.npz"}, {"bad.npz": truncated("{bundle}", 300)},
     "not a valid weights bundle"),
    ("teacher-is-folder", {"--teacher": "{tmp}"}, {}, "is a folder"),
    ("no-unlabeled", {"--unlabeled": None}, {}, "no unlabeled audio"),
    ("missing-unlabeled", {"--unlabeled": "{tmp}/nowhere"}, {}, "no such file or folder"),
    ("empty-unlabeled-folder", {"--unlabeled": "{tmp}/nothing"}, {"nothing": DIR}, "no unlabeled audio"),
    ("unlabeled-text-named-wav", {"--unlabeled": "{tmp}/u"}, {"u/fake.wav": NOT_AUDIO}, "not a readable audio file"),
    ("no-validation", {"--labeled": None}, {}, "validation data needed"),
    ("labeled-folder-without-val", {"--labeled": "{corpus_dir}/train"}, {}, "has no validation split"),
    ("missing-labeled", {"--labeled": "{tmp}/none.csv"}, {}, "not found"),
    ("missing-val", {"--val": "{tmp}/none.csv"}, {}, "manifest"),
    ("run-exists", {}, {"run/iter1/last.npz": b"x"}, "--resume"),
    ("resume-nothing", {"--resume": FLAG}, {}, "nothing to resume"),
    ("run-dir-under-a-file", {"--run-dir": "{tmp}/file/run"}, {"file": "x"}, "cannot create output folder"),
    ("empty-shard", {"--labeled": None, "--run-dir": "{tmp}/r", "--prepare-only": FLAG, "--shard": "3/4"}, {},
     ["holds no unlabeled file", "fewer files than shards"]),
    ("bad-shard", {"--shard": "2/2"}, {}, "shard"),
    ("bad-ratio", {"--ratio": "1-1"}, {}, "ratio"),
    ("unknown-setup", {"--setup": "mean-teacher"}, {}, "invalid choice"),
    ("zero-k", {"--k": "0"}, {}, "positive integer"),
    ("capacity-and-widths", {"--capacity": "tiny", "--lstm-units": "4"}, {}, "--capacity sets the student's widths"),
    ("unknown-capacity", {"--capacity": "huge"}, {}, "invalid choice"),
]


@pytest.mark.parametrize("changes, files, message", cases(STUDENT_SITUATIONS))
def test_student_bad_situations(changes, files, message, tmp_path, values, capsys):
    refuse(student_cli.main, changed(STUDENT_BASE, changes), files, message, tmp_path, values, capsys)


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

AUGMENT_SITUATIONS = [  # (case, argv, files besides in.wav, message)
    ("seed-text", ["{tmp}/in.wav", "{tmp}/out.wav", "--seed", "abc"], {}, "--seed"),
    ("seed-negative", ["{tmp}/in.wav", "{tmp}/out.wav", "--seed", "-3"], {}, "--seed"),
    ("missing-output-folder", ["{tmp}/in.wav", "{tmp}/nope/out.wav"], {}, "no such folder"),
    ("output-is-a-folder", ["{tmp}/in.wav", "{tmp}/folder.wav"], {"folder.wav": DIR}, "is a folder"),
    ("output-without-extension", ["{tmp}/in.wav", "{tmp}/noext"], {}, "sound-file extension"),
    ("output-of-another-kind", ["{tmp}/in.wav", "{tmp}/out.xyz"], {}, "sound-file extension"),
    ("output-is-the-input", ["{tmp}/in.wav", "{tmp}/in.wav"], {}, "would overwrite the input"),
    ("unknown-option", ["{tmp}/in.wav", "{tmp}/out.wav", "--speed", "2"], {}, "unrecognized arguments"),
    ("low-rate", ["{tmp}/in.wav", "{tmp}/out.wav"], {"in.wav": tone(220, 0.5, 2000)}, "too low"),
    # sox failed on some chains at 4 kHz (a shelf above Nyquist)
    ("rate-below-the-effects", ["{tmp}/in.wav", "{tmp}/out.wav"], {"in.wav": tone(220, 0.5, 4000)},
     "too low for these effects"),
]


@pytest.mark.parametrize("argv, files, message", cases(AUGMENT_SITUATIONS))
def test_augment_bad_situations(argv, files, message, tmp_path, values, capsys):
    from vocal_melody.lab.cli import augment as augment_cli

    refuse(augment_cli.main, argv, {"in.wav": tone(220, 0.5, 16000), **files}, message, tmp_path, values, capsys)
