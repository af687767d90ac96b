import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, harmonic_tone, write_wav

from vocal_melody.cli import extract as extract_cli
from vocal_melody.errors import MelodyError
from vocal_melody.inference import decoding
from vocal_melody.inference import extractor as cli

LINE = re.compile(r"^\d+\.\d{2} \d+\.\d{4}$")


def run_script(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "melodyExtraction_NS.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_writes_one_line_per_frame(tmp_path, tiny_bundle):
    audio = harmonic_tone(250.0, 2.345, 16000)
    wav = write_wav(tmp_path / "a.wav", audio, 16000)
    result = run_script("-p", wav, "-o", tmp_path / "out", "-w", tiny_bundle)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = (tmp_path / "out" / "pitch_a.wav.txt").read_text().splitlines()
    n_samples_8k = 2.345 * 8000
    assert len(lines) == 1 + int(n_samples_8k) // 80 == 235
    assert all(LINE.match(line) for line in lines)
    times = [float(line.split()[0]) for line in lines]
    assert times[:3] == [0.0, 0.01, 0.02] and times[-1] == 2.34
    f0 = np.array([float(line.split()[1]) for line in lines])
    assert np.all((f0 == 0) | ((f0 > 82) & (f0 < 1976)))


def test_missing_weights_is_one_clear_line(tmp_path):
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(250.0, 0.5, 8000), 8000)
    result = run_script("-p", wav, "-o", tmp_path / "out", "-w", tmp_path / "none.npz")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "none.npz not found" in result.stderr and "train_teacher.py" in result.stderr
    assert not (tmp_path / "out").exists()


def test_default_weights_are_package_data(monkeypatch, tmp_path):
    import importlib

    import vocal_melody.bundle

    assert cli.DEFAULT_WEIGHTS == ROOT / "vocal_melody" / "weights" / "melody_crnn.npz"
    monkeypatch.setenv("VOCAL_MELODY_WEIGHTS", str(tmp_path / "mine.npz"))
    try:
        assert importlib.reload(vocal_melody.bundle).DEFAULT_WEIGHTS == tmp_path / "mine.npz"
    finally:
        monkeypatch.delenv("VOCAL_MELODY_WEIGHTS")
        importlib.reload(vocal_melody.bundle)


def test_batch_with_a_bad_file_writes_the_others(tmp_path, tiny_bundle, capsys):
    folder = tmp_path / "songs"
    folder.mkdir()
    for name in ("one.wav", "two.flac"):
        write_wav(folder / name, harmonic_tone(200.0, 0.4, 22050), 22050)
    (folder / "broken.mp3").write_bytes(b"ID3" + bytes(200))
    code = extract_cli.main(["-p", str(folder), "-o", str(tmp_path / "out"), "-w", str(tiny_bundle)])
    assert code == 1
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["pitch_one.wav.txt", "pitch_two.flac.txt"]
    err = capsys.readouterr().err
    assert "broken.mp3" in err and "wrote 2 of 3" in err and "1 failed" in err


def test_skip_existing_and_formats(tmp_path, tiny_bundle):
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(300.0, 0.3, 8000), 8000)
    out = tmp_path / "out"
    assert extract_cli.main(["-p", str(wav), "-o", str(out), "-w", str(tiny_bundle), "--format", "csv", "-q"]) == 0
    lines = (out / "pitch_a.wav.csv").read_text().splitlines()
    assert lines[0] == "time,frequency,confidence" and len(lines) == 1 + 31
    (out / "pitch_a.wav.csv").write_text("kept")
    assert extract_cli.main(["-p", str(wav), "-o", str(out), "-w", str(tiny_bundle), "--format", "csv",
                     "--skip-existing", "-q"]) == 0
    assert (out / "pitch_a.wav.csv").read_text() == "kept"


def test_glob_patterns_and_missing_inputs(tmp_path, tiny_bundle):
    for name in ("x1.wav", "x2.wav"):
        write_wav(tmp_path / name, harmonic_tone(300.0, 0.2, 8000), 8000)
    out = tmp_path / "out"
    assert extract_cli.main(["-p", str(tmp_path / "x*.wav"), "-o", str(out), "-w", str(tiny_bundle), "-q"]) == 0
    assert len(list(out.iterdir())) == 2
    with pytest.raises(MelodyError, match="no such file or folder"):  # nothing to do at all
        extract_cli.main(["-p", str(tmp_path / "missing.wav"), "-o", str(out), "-w", str(tiny_bundle)])


def test_extract_melody_on_arrays(tiny_bundle):
    extractor = cli.MelodyExtractor(tiny_bundle)
    stereo = np.stack([harmonic_tone(220.0, 1.0, 44100)] * 2, axis=1)
    times, f0, confidence = cli.extract_melody(stereo, 44100, extractor=extractor)
    assert times.shape == f0.shape == confidence.shape == (101,)
    assert np.all((confidence >= 0) & (confidence <= 1))
    times, f0, confidence = cli.extract_melody(np.zeros(16000), 16000, extractor=extractor)
    assert times.shape == (101,) and not f0.any()  # silence has no voice
    with pytest.raises(MelodyError, match="sample_rate"):
        cli.extract_melody(np.zeros(100), weights=tiny_bundle)


def test_decode_rules():
    probs = np.full((4, 442), 1e-4)
    probs[0, 0], probs[0, 233] = 0.6, 0.4        # argmax says unvoiced
    probs[1, 233] = 0.9                          # A4
    probs[2, 0] = 0.9                            # unvoiced
    probs[3, 100], probs[3, 101], probs[3, 0] = 0.3, 0.3, 0.35
    probs /= probs.sum(axis=1, keepdims=True)
    f0, confidence = decoding.decode(probs)
    assert f0[0] == 0 and f0[1] == pytest.approx(440.0) and f0[2] == 0 and f0[3] == 0
    f0, _ = decoding.decode(probs, voicing_threshold=0.35)
    assert f0[0] == pytest.approx(440.0) and f0[3] > 0 and f0[2] == 0
    np.testing.assert_allclose(confidence, 1 - probs[:, 0], rtol=1e-6)
    f0, _ = decoding.decode(probs, subbin=True, voicing_threshold=0.5)
    midi = 69 + 12 * np.log2(f0[3] / 440)
    assert midi == pytest.approx(40 + 99.5 / 8, abs=0.01)


def test_median_filter_removes_single_frame_glitches():
    probs = np.zeros((7, 442))
    probs[:, 233] = 1.0
    probs[3] = 0
    probs[3, 241] = 1.0                         # one frame a semitone up
    f0, _ = decoding.decode(probs, median_filter=5)
    assert f0[3] == pytest.approx(440.0)


@pytest.mark.parametrize("option", [["--median-filter", "4"], ["--voicing-threshold", "2"],
                                    ["--format", "xml"], ["--batch-size", "0"]])
def test_invalid_option_values_exit_non_zero(option, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        extract_cli.main(["-p", str(tmp_path), *option])
    assert exit_info.value.code == 2


@pytest.mark.heavy
def test_sigkill_mid_batch_leaves_no_truncated_output_and_rerun_completes(tmp_path, tiny_bundle):
    import signal
    import time

    folder = tmp_path / "songs"
    folder.mkdir()
    for index in range(12):
        write_wav(folder / f"s{index:02d}.wav", harmonic_tone(200 + 5 * index, 3.0, 8000), 8000)
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "melodyExtraction_NS.py"), "-p", str(folder), "-o", str(out),
               "-w", str(tiny_bundle), "--engine", "tf", "-q"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and len(list(out.glob("pitch_*.txt"))) >= 3):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = list(out.glob("pitch_*.txt"))
    assert 3 <= len(finished) < 12
    for path in finished:  # every visible output is whole
        assert len(path.read_text().splitlines()) == 301
    rerun = subprocess.run(command + ["--skip-existing"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    outputs = sorted(out.glob("pitch_*.txt"))
    assert len(outputs) == 12 and all(len(p.read_text().splitlines()) == 301 for p in outputs)


def test_plot_and_sonic_visualiser_outputs(tmp_path, tiny_bundle):
    wav = write_wav(tmp_path / "a.wav", harmonic_tone(300.0, 1.0, 8000), 8000)
    out = tmp_path / "out"
    assert extract_cli.main(["-p", str(wav), "-o", str(out), "-w", str(tiny_bundle), "--format", "sv", "--plot", "-q",
                     "--voicing-threshold", "0"]) == 0
    png = out / "pitch_a.wav.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (out / "pitch_a.wav.sv.csv").read_text().splitlines()
    assert len(rows) == 101  # threshold 0: every frame voiced, no header
    time_value = rows[1].split(",")
    assert time_value[0] == "0.010" and float(time_value[1]) > 0


def test_a_missing_input_among_good_ones_is_counted_and_the_rest_written(tmp_path, tiny_bundle, capsys):
    good = write_wav(tmp_path / "good.wav", harmonic_tone(300.0, 0.3, 8000), 8000)
    out = tmp_path / "out"
    code = extract_cli.main(["-p", str(good), str(tmp_path / "nope.wav"), "-o", str(out), "-w", str(tiny_bundle)])
    err = capsys.readouterr().err
    assert code == 1 and (out / "pitch_good.wav.txt").is_file()
    assert "error: " + str(tmp_path / "nope.wav") + ": no such file or folder" in err
    assert "wrote 1 of 2 melody files" in err and "1 failed" in err


def test_same_name_in_two_folders_never_overwrites_and_one_file_by_two_paths_runs_once(tmp_path, tiny_bundle,
                                                                                       capsys):
    for folder, f0 in (("a", 200.0), ("b", 400.0)):
        (tmp_path / "in" / folder).mkdir(parents=True)
        write_wav(tmp_path / "in" / folder / "song.wav", harmonic_tone(f0, 0.3, 8000), 8000)
    out = tmp_path / "out"
    code = extract_cli.main(["-p", str(tmp_path / "in"), "-r", "-o", str(out), "-w", str(tiny_bundle)])
    err = capsys.readouterr().err
    assert code == 1 and [p.name for p in out.iterdir()] == ["pitch_song.wav.txt"]
    assert "also" in err and "wrote 1 of 2" in err
    song = tmp_path / "in" / "a" / "song.wav"
    same = tmp_path / "in" / "a" / ".." / "a" / "song.wav"
    assert extract_cli.main(["-p", str(song), str(same), "-o", str(tmp_path / "o2"), "-w", str(tiny_bundle)]) == 0
    assert "wrote 1 of 1" in capsys.readouterr().err


def test_skip_existing_redoes_an_empty_output_and_a_missing_picture(tmp_path, tiny_bundle, capsys):
    wav = write_wav(tmp_path / "s.wav", harmonic_tone(300.0, 0.3, 8000), 8000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "pitch_s.wav.txt").write_text("")
    assert extract_cli.main(["-p", str(wav), "-o", str(out), "-w", str(tiny_bundle), "--skip-existing"]) == 0
    assert (out / "pitch_s.wav.txt").stat().st_size > 0
    assert "wrote 1 of 1" in capsys.readouterr().err
    assert extract_cli.main(["-p", str(wav), "-o", str(out), "-w", str(tiny_bundle), "--skip-existing", "--plot"]) == 0
    assert (out / "pitch_s.wav.png").is_file()  # the text existed, the picture did not: not skipped
    assert extract_cli.main(["-p", str(wav), "-o", str(out), "-w", str(tiny_bundle), "--skip-existing", "--plot"]) == 0
    assert "skipped 1 existing" in capsys.readouterr().err


def test_debug_shows_the_traceback_and_the_batch_goes_on(tmp_path, tiny_bundle, capsys):
    bad = tmp_path / "a_bad.wav"
    bad.write_text("not audio")
    good = write_wav(tmp_path / "b_good.wav", harmonic_tone(300.0, 0.3, 8000), 8000)
    out = tmp_path / "out"
    code = extract_cli.main(["-p", str(bad), str(good), "-o", str(out), "-w", str(tiny_bundle), "--debug"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" in err and (out / "pitch_b_good.wav.txt").is_file()
    assert "wrote 1 of 2" in err
