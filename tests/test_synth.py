import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SHARED_DATA, harmonic_tone, write_wav

from vocal_melody import labels
from vocal_melody.lab.cli import synth as synth_cli
from vocal_melody.errors import MelodyError
from vocal_melody.evaluation import melody_scores
from vocal_melody.formats.readers import read_f0
from vocal_melody.lab.synth import anasyn as anasyn_module
from vocal_melody.lab.synth import compose as synth
from vocal_melody.lab.synth import world
from vocal_melody.lab.synth.contours import Note, expressive_f0, without_vibrato

RATE = 16000


def sung_tone(seconds=2.0, f0=220.0, rate=RATE, seed=0):
    """A voice-like test signal: harmonic tone with vibrato, silence around it, a little breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    contour = f0 * 2 ** (0.4 * np.sin(2 * np.pi * 5.5 * t) / 12)
    phase = 2 * np.pi * np.cumsum(contour) / rate
    tone = sum(np.sin(h * phase) / h for h in range(1, 8))
    envelope = ((t > 0.3) & (t < seconds - 0.3)).astype(float)
    audio = 0.2 * tone * envelope + 0.002 * rng.standard_normal(len(t))
    return audio.astype(np.float32)


def test_expressive_f0_has_vibrato_in_range_and_silent_rests():
    rng = np.random.default_rng(0)
    frame = 0.005
    notes = [Note(0.5, 2.0, 60.0), Note(3.0, 1.0, 64.0)]
    f0 = expressive_f0(notes, frame, rng)
    assert np.all(f0[: int(0.5 / frame)] == 0) and np.all(f0[int(2.5 / frame) + 1: int(3.0 / frame)] == 0)
    cents = 1200 * np.log2(f0[int(1.2 / frame): int(2.4 / frame)] / labels.midi_to_hz(60.0))
    spectrum = np.abs(np.fft.rfft((cents - cents.mean()) * np.hanning(len(cents)), n=8192))
    freqs = np.fft.rfftfreq(8192, frame)
    assert 4.2 <= freqs[np.argmax(spectrum[1:]) + 1] <= 7.3
    assert 15 <= np.abs(cents - np.median(cents)).max() <= 140
    assert abs(np.median(cents)) < 30  # the note stays on its pitch


def test_without_vibrato_keeps_the_note_and_slow_slides_and_drops_the_vibrato():
    frame = 0.005
    t = np.arange(600) * frame
    slide = np.clip((t - 1.0) / 1.0, 0.0, 1.0) * 200.0  # two semitones over a second
    f0 = 220.0 * 2 ** ((slide + 60.0 * np.sin(2 * np.pi * 4.5 * t)) / 1200.0)
    f0[:40] = 0.0
    f0[300:320] = 0.0  # a rest splits it into two runs, smoothed apart
    plain = without_vibrato(f0, frame)
    assert np.array_equal(plain > 0, f0 > 0)
    inner = np.r_[80:260, 360:560]  # away from the runs' ends
    residual = 1200 * np.log2(plain[inner] / 220.0) - slide[inner]
    assert np.abs(residual).max() < 8  # the 60-cent vibrato is gone; the slide and the note are kept
    ends = np.r_[40:80, 260:300]
    assert np.abs(1200 * np.log2(plain[ends] / 220.0) - slide[ends]).max() < 50


def _partial_cents(audio: np.ndarray, partial: float, frame: float) -> np.ndarray:
    """Deviation in cents, every ``frame`` seconds, of the partial near ``partial`` Hz (band-pass + Hilbert)."""
    from scipy.signal import hilbert

    spectrum = np.fft.rfft(audio)
    spectrum[np.abs(np.fft.rfftfreq(len(audio), 1.0 / RATE) - partial) > 0.1 * partial] = 0
    phase = np.unwrap(np.angle(hilbert(np.fft.irfft(spectrum, len(audio)))))
    inst = np.diff(phase) * RATE / (2 * np.pi)
    return (1200 * np.log2(np.clip(inst, 1.0, None) / partial))[RATE // 4:-RATE // 4:int(frame * RATE)]


def test_with_vibrato_modulates_every_partial_like_a_sung_vibrato():
    from vocal_melody.lab.synth.mixing import with_vibrato

    frame = 0.005
    tone = harmonic_tone(300.0, 3.0, RATE, amplitude=0.5)
    shaken = with_vibrato(tone, RATE, np.random.default_rng(1))
    assert shaken.shape == tone.shape and shaken.dtype == np.float32
    for partial in (300.0, 900.0):  # each partial moves alike
        cents = _partial_cents(shaken, partial, frame)
        assert 15 <= np.percentile(np.abs(cents), 99) <= 140
        assert abs(np.median(cents)) < 10  # around the note's pitch, not off it
        wobble = np.abs(np.fft.rfft((cents - cents.mean()) * np.hanning(len(cents)), n=8192))
        assert 4.2 <= np.fft.rfftfreq(8192, frame)[np.argmax(wobble[1:]) + 1] <= 7.3
    plain = np.abs(np.fft.rfft(tone))
    assert np.argmax(plain) == np.argmax(np.abs(np.fft.rfft(shaken)))  # the same note
    narrow = with_vibrato(tone, RATE, np.random.default_rng(1), depth_cents=(8.0, 10.0))
    assert 5 <= np.percentile(np.abs(_partial_cents(narrow, 300.0, frame)), 99) <= 16


def test_anasyn_label_is_exact_on_the_resynthesized_voice():
    vocal = sung_tone()
    accompaniment = harmonic_tone(110.0, 2.0, RATE, amplitude=0.1)
    mix, resynth, label = anasyn_module.anasyn(vocal, accompaniment, RATE, ratio_db=3.0)
    assert len(mix) == len(vocal) and len(label) == 1 + (len(vocal) // 2) // 80
    check = world.analyse(resynth, RATE, gate=False)
    times = np.arange(len(label)) * 0.01
    scores = melody_scores(times, label, check.times, check.raw_f0)
    assert scores["RPA"] > 0.97
    voiced = label > 0
    assert 0.5 < voiced.mean() < 0.85  # the silences are unvoiced


def test_anasyn_refuses_a_stem_without_voice():
    noise = (0.1 * np.random.default_rng(0).standard_normal(RATE)).astype(np.float32)
    with pytest.raises(MelodyError, match="no voice found"):
        anasyn_module.anasyn(noise, None, RATE)


def test_anasyn_cli_rejects_mismatched_lengths(tmp_path):
    write_wav(tmp_path / "v.wav", sung_tone(2.0), RATE)
    write_wav(tmp_path / "a.wav", harmonic_tone(110, 3.0, RATE), RATE)
    with pytest.raises(MelodyError, match="differ in length"):
        synth_cli.main(["anasyn", "--vocal", str(tmp_path / "v.wav"), "--accompaniment", str(tmp_path / "a.wav"),
                    "-o", str(tmp_path / "out"), "--sample-rate", str(RATE)])
    assert synth_cli.main(["anasyn", "--vocal", str(tmp_path / "v.wav"), "--accompaniment", str(tmp_path / "a.wav"),
                       "--loop-accompaniment", "-o", str(tmp_path / "out"), "--sample-rate", str(RATE)]) == 0
    lines = (tmp_path / "out" / "v.f0.txt").read_text().splitlines()
    assert len(lines) == 201 and lines[0] == "0.00 0.0000"


def _voice_folder(folder):
    folder.mkdir(parents=True)
    for index, f0 in enumerate((180.0, 260.0, 330.0)):
        phrase = np.concatenate([sung_tone(0.8, f0, seed=i) for i in range(4)])
        write_wav(folder / f"singer{index}.wav", phrase, RATE)
    return folder


def test_compose_is_deterministic_and_writes_a_manifest(tmp_path):
    voices = _voice_folder(tmp_path / "voices")
    (tmp_path / "acc").mkdir()
    write_wav(tmp_path / "acc" / "band.wav", harmonic_tone(98.0, 5.0, RATE, amplitude=0.2), RATE)
    outputs = []
    for run in ("a", "b"):
        argv = ["compose", "--minutes", "0.4", "--seed", "5", "--workers", "1", "--voices", str(voices),
                "--accompaniment", str(tmp_path / "acc"), "--cache-dir", str(tmp_path / "cache"),
                "-o", str(tmp_path / run), "-q"]
        assert synth_cli.main(argv) == 0
        outputs.append(tmp_path / run)
    manifest_a = (outputs[0] / "manifest.csv").read_text()
    assert manifest_a == (outputs[1] / "manifest.csv").read_text()
    rows = manifest_a.splitlines()
    assert rows[0].startswith("id,split,audio,label,kind,voices,accompaniment,ratio_db,seconds")
    assert len(rows) >= 2
    first = rows[1].split(",")
    label_a = (outputs[0] / first[3]).read_text()
    assert label_a == (outputs[1] / first[3]).read_text()
    import soundfile

    audio, rate = soundfile.read(str(outputs[0] / first[2]))
    times, f0 = read_f0(outputs[0] / first[3])
    assert rate == RATE and len(times) == 1 + int(round(len(audio) * 8000 / RATE)) // 80
    assert (f0 > 0).any() and (f0 == 0).any()
    voiced = f0[f0 > 0]
    assert labels.hz_to_midi(voiced).min() >= 40 and labels.hz_to_midi(voiced).max() <= 95


def test_compose_resumes_after_an_interruption(tmp_path):
    voices = _voice_folder(tmp_path / "voices")
    (tmp_path / "acc").mkdir()
    write_wav(tmp_path / "acc" / "band.wav", harmonic_tone(98.0, 5.0, RATE, amplitude=0.2), RATE)
    argv = ["compose", "--minutes", "0.6", "--seed", "1", "--workers", "1", "--voices", str(voices),
            "--accompaniment", str(tmp_path / "acc"), "--cache-dir", str(tmp_path / "cache"),
            "-o", str(tmp_path / "out"), "-q"]
    assert synth_cli.main(argv) == 0
    items = sorted((tmp_path / "out").glob("*/*.json"))
    first_label = sorted((tmp_path / "out").rglob("*.f0.txt"))[0]
    stamp = first_label.stat().st_mtime_ns
    items[-1].unlink()  # as if killed before the last item finished
    assert synth_cli.main(argv) == 0
    assert first_label.stat().st_mtime_ns == stamp  # finished items are not redone
    assert len(sorted((tmp_path / "out").glob("*/*.json"))) == len(items)


def test_demo_label_covers_the_demo_audio():
    import soundfile

    info = soundfile.info(str(ROOT / "audio" / "demo_song.wav"))
    times, f0 = read_f0(ROOT / "audio" / "demo_song.f0.txt")
    assert len(times) == 1 + int(round(info.frames * 8000 / info.samplerate)) // 80
    assert 0.5 < (f0 > 0).mean() < 0.95


@pytest.mark.heavy
@pytest.mark.skipif(not (SHARED_DATA / "voice" / "vocadito_1.wav").exists(), reason="needs ../shared/data")
def test_voicing_gate_against_the_human_label_of_vocadito_1():
    analysis = world.analyse_file(SHARED_DATA / "voice" / "vocadito_1.wav", RATE)
    ref_times, ref_f0 = read_f0(SHARED_DATA / "voice" / "vocadito_1_f0.csv")
    gated = melody_scores(ref_times, ref_f0, analysis.times, analysis.f0)
    raw = melody_scores(ref_times, ref_f0, analysis.times, analysis.raw_f0)
    assert gated["VR"] > 0.98 and gated["RPA"] > 0.96
    assert gated["VFA"] < 0.13 < raw["VFA"]


def test_a_fresh_and_a_cached_analysis_are_the_same_arrays(tmp_path):
    from vocal_melody.cache import ArrayCache

    path = write_wav(tmp_path / "voice.wav", sung_tone(1.5), RATE)
    cache = ArrayCache(tmp_path / "world")
    fresh = world.analyse_file(path, RATE, cache)
    cached = world.analyse_file(path, RATE, cache)
    assert len(list((tmp_path / "world").glob("*.npz"))) == 1
    for name in ("f0", "sp", "ap", "raw_f0", "energy_db"):
        np.testing.assert_array_equal(getattr(fresh, name), getattr(cached, name))
    # the stored form is lossy (float16) but close to the uncached analysis
    exact = world.analyse_file(path, RATE)
    assert np.abs(np.log(cached.sp) - np.log(np.maximum(exact.sp, 1e-30))).max() < 0.05
    np.testing.assert_array_equal(cached.f0, exact.f0)


def test_synth_cli_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "synth_testset.py"), "anasyn", "--vocal",
                             str(tmp_path / "missing.wav"), "-o", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1 and "missing.wav: no such file" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.skipif(not (SHARED_DATA / "voice").exists(), reason="needs ../shared/data")
def test_held_out_voices_and_accompaniment_never_reach_training():
    sources = synth.discover_sources([SHARED_DATA / "voice", SHARED_DATA / "voice_research"],
                                     [SHARED_DATA / "accompaniment"])
    groups = {split: {v.group for v in sources.voices[split]} for split in synth.SPLITS}
    assert groups["test"] == {"vocadito_1", "csd_drmeter_fixture"}
    assert groups["val"] == {"vocadito_14", "dcs_libf0_excerpt", "smstools_freesound_singing"}
    assert "vocadito_10" in groups["train"]
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["val"])
    assert [p.name for p in sources.accompaniments["test"]] == ["US_Army_Strings_-_Brahms_Hungarian_Dance_5.ogg"]
    assert all("Brahms" not in p.name for p in sources.accompaniments["train"] + sources.distractors)


def test_mute_stretch_silences_voice_and_label_together():
    rate, period = RATE, world.FRAME_PERIOD_MS
    vocal = np.ones(3 * rate, dtype=np.float32)
    label_f0 = np.full(int(3000 / period) + 1, 220.0)
    muted, muted_f0 = synth.mute_stretch(vocal, label_f0, 1.0, 0.5, rate)
    assert np.all(muted[int(1.05 * rate):int(1.45 * rate)] == 0)
    assert np.all(muted[:rate] == 1) and np.all(muted[int(1.5 * rate):] == 1)
    times = np.arange(len(label_f0)) * period / 1000
    assert np.all(muted_f0[(times >= 1.0) & (times <= 1.5)] == 0)  # every frame touching the stretch
    assert np.all(muted_f0[(times < 0.99) | (times > 1.51)] == 220.0)
    assert np.all(vocal == 1) and np.all(label_f0 == 220.0)  # inputs untouched


def test_recording_parts_of_train_and_val_do_not_overlap():
    audio = np.arange(1000)
    train, val = synth.recording_part(audio, "train"), synth.recording_part(audio, "val")
    assert len(train) + len(val) == 1000 and len(val) == 150
    assert train[-1] < val[0]


@pytest.mark.parametrize("minutes", [1.0, 3.0, 8.0])
def test_a_small_corpus_plan_has_val_and_test_items(minutes):
    for seed in range(4):
        splits = [split for _, split, _ in synth._plan(minutes, seed)]
        assert {"train", "val", "test"} <= set(splits), (minutes, seed, splits)


def test_a_large_plan_is_unchanged_by_the_small_corpus_rule():
    plan = synth._plan(60, 7)  # the benchmark's synthesized set
    assert sum(s == "test" for _, s, _ in plan) >= 2 and sum(s == "val" for _, s, _ in plan) >= 2
    rng = np.random.default_rng([7, 2**31 - 1])  # the plan's own draws, repeated here
    for index, split, seconds in plan:
        assert seconds == rng.uniform(15.0, 30.0)
        weights = np.array([0.8, 0.1, 0.1])
        assert split == synth.SPLITS[int(rng.choice(3, p=weights / weights.sum()))]


def test_compose_refuses_to_mix_two_corpora_in_one_folder(tmp_path, capsys):
    voices = _voice_folder(tmp_path / "voices")
    argv = ["compose", "--minutes", "0.3", "--workers", "1", "--voices", str(voices), "--accompaniment",
            str(tmp_path / "voices"), "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out"), "-q"]
    assert synth_cli.main(argv + ["--seed", "1"]) == 0
    manifest = (tmp_path / "out" / "manifest.csv").read_text()
    with pytest.raises(MelodyError, match="other settings \\(seed: 1\\)"):
        synth_cli.main(argv + ["--seed", "2"])
    assert (tmp_path / "out" / "manifest.csv").read_text() == manifest
    assert synth_cli.main(argv + ["--seed", "1"]) == 0  # the same settings resume it


def test_a_setting_recorded_only_when_set_is_checked_both_ways(tmp_path):
    """A folder made with --vibrato-cents 10 40 is no corpus for the default cents, nor the other way round."""
    import json

    from vocal_melody.lab.synth.compose import check_corpus_settings

    narrow = {"seed": 1, "vibrato_share": 1.0, "vibrato_cents": [10.0, 40.0]}
    default = {"seed": 1, "vibrato_share": 1.0}
    for recorded, asked in ((narrow, default), (default, narrow)):
        (tmp_path / "compose.json").write_text(json.dumps(recorded))
        with pytest.raises(MelodyError, match="other settings \\(vibrato_cents: "):
            check_corpus_settings(tmp_path, asked)
        check_corpus_settings(tmp_path, recorded)  # the same settings resume it


def _vibrato_band_cents(label: np.ndarray, frame: float = 0.01) -> float:
    """RMS in cents of the label's pitch movement at 4-8 Hz (a vibrato's rates), over its voiced runs of 0.5 s+."""
    voiced = (label > 0).astype(np.int8)
    edges = np.diff(np.concatenate([[0], voiced, [0]]))
    energy, frames = 0.0, 0
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if stop - start >= 50:
            cents = 1200 * np.log2(label[start:stop])
            spectrum = np.fft.rfft(cents - cents.mean())
            band = (np.fft.rfftfreq(stop - start, frame) >= 4) & (np.fft.rfftfreq(stop - start, frame) <= 8)
            energy += 2 * np.sum(np.abs(spectrum[band]) ** 2) / (stop - start)
            frames += stop - start
    return float(np.sqrt(energy / max(frames, 1)))


@pytest.mark.heavy
def test_plain_voices_lose_only_their_vibrato(tmp_path):
    (tmp_path / "voices").mkdir()
    for index, f0 in enumerate((180.0, 260.0, 330.0)):  # long notes with a vibrato, for the re-sung items
        write_wav(tmp_path / "voices" / f"singer{index}.wav", np.concatenate(
            [sung_tone(2.5, f0 * 2 ** (i / 12), seed=i) for i in range(3)]), RATE)
    sources = synth.discover_sources([tmp_path / "voices"], [])
    plain_sources = synth.discover_sources([tmp_path / "voices"], [])
    plain_sources.plain_voice_share = 1.0
    cache = synth.SourceCache(tmp_path / "cache", RATE)
    vibrato = {}
    for index in range(6):
        mix, label, fields = synth.compose_item(index, "train", 2, 6.0, sources, cache)
        mix_p, label_p, fields_p = synth.compose_item(index, "train", 2, 6.0, plain_sources, cache)
        assert fields_p["kind"] == fields["kind"] + "-plain"
        assert {k: v for k, v in fields_p.items() if k != "kind"} == {k: v for k, v in fields.items() if k != "kind"}
        assert mix_p.shape == mix.shape and np.array_equal(label_p > 0, label > 0)  # the same notes and rests
        voiced = label > 0
        assert np.median(np.abs(1200 * np.log2(label_p[voiced] / label[voiced]))) < 30  # on the same notes
        assert _vibrato_band_cents(label_p) <= 0.3 * _vibrato_band_cents(label)
        vibrato[fields["kind"]] = vibrato.get(fields["kind"], 0.0) + _vibrato_band_cents(label)
    assert set(vibrato) == {"sung", "resung"} and min(vibrato.values()) > 5  # both kinds had a vibrato to lose
    half = synth.discover_sources([tmp_path / "voices"], [])
    half.plain_voice_share = 0.5
    assert {synth.compose_item(i, "train", 2, 6.0, half, cache)[2]["kind"].endswith("-plain")
            for i in range(8)} == {True, False}


def test_plain_voice_share_is_recorded_and_checked(tmp_path):
    voices = _voice_folder(tmp_path / "voices")
    argv = ["compose", "--minutes", "0.2", "--seed", "3", "--workers", "1", "--voices", str(voices),
            "--accompaniment", str(voices), "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out"),
            "-q", "--plain-voice-share", "1"]
    assert synth_cli.main(argv) == 0
    import json

    assert json.loads((tmp_path / "out" / "compose.json").read_text())["plain_voice_share"] == 1.0
    assert all(row.split(",")[4].endswith("-plain")
               for row in (tmp_path / "out" / "manifest.csv").read_text().splitlines()[1:])
    with pytest.raises(MelodyError, match="other settings \\(plain_voice_share: 1.0\\)"):
        synth_cli.main(argv[:-2])
    result = subprocess.run([sys.executable, str(ROOT / "synth_testset.py"), *argv[:-1], "2"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--plain-voice-share" in result.stderr
    assert "Traceback" not in result.stderr


def test_compose_workers_end_with_a_killed_parent(tmp_path):
    import os
    import signal
    import time

    voices = _voice_folder(tmp_path / "voices")
    process = subprocess.Popen([sys.executable, str(ROOT / "synth_testset.py"), "compose", "--minutes", "3",
                                "--workers", "2", "--voices", str(voices), "--accompaniment", str(voices),
                                "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out"), "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "out").glob("*/*.json")):
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.2)
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert children and process.poll() is None, "no worker processes"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(2)
    alive = [pid for pid in children if os.path.exists(f"/proc/{pid}") and
             "zombie" not in open(f"/proc/{pid}/status").read().lower()]
    assert not alive, f"workers outlived their parent: {alive}"
    assert b"Traceback" not in process.stderr.read()
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_voice_folders_without_held_out_voices_never_share_a_voice_across_splits(tmp_path):
    voices = _voice_folder(tmp_path / "voices")
    sources = synth.discover_sources([voices], [])
    groups = {split: {v.group for v in sources.voices[split]} for split in synth.SPLITS}
    assert groups == {"train": {"singer0"}, "val": {"singer1"}, "test": {"singer2"}}
    assert sources.held_out == {"test": "singer2", "val": "singer1"}
    (voices / "singer2.wav").unlink()
    (voices / "singer1.wav").unlink()
    with pytest.raises(MelodyError, match="too few voice groups"):
        synth.discover_sources([voices], [])


def test_a_voice_file_without_a_voice_is_named(tmp_path):
    voices = _voice_folder(tmp_path / "voices")
    noise = (0.1 * np.random.default_rng(0).standard_normal(2 * RATE)).astype(np.float32)
    write_wav(voices / "noise.wav", noise, RATE)
    argv = ["compose", "--minutes", "0.3", "--workers", "1", "--voices", str(voices), "--accompaniment",
            str(voices), "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out"), "-q"]
    with pytest.raises(MelodyError, match="noise.wav: no singing or speech found"):
        synth_cli.main(argv)
