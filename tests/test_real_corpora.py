"""Real singing corpora: MIR-1K in both layouts, SSVD's note-gated labels, singer splits, group-mean validation."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from conftest import ROOT, SHARED_DATA, harmonic_tone, write_wav
from vocal_melody.lab.corpora import mir1k, ssvd
from vocal_melody.lab.corpora.datasets import read_label, read_manifest
from vocal_melody.errors import MelodyError
from vocal_melody.evaluation import defined_scores, group_mean_scores, mean_scores, melody_scores
from vocal_melody.labels import hz_to_midi, midi_to_hz

RATE = mir1k.RELEASE_RATE
TONE_MIDI = 57.0  # A3, 220 Hz
TONE_START, TONE_END, SECONDS = 0.5, 1.5, 2.0


def _mir1k_clip(root, name: str = "abjones_1_01", layout: str = "release"):
    """A tiny MIR-1K clip: a 220 Hz tone sung from 0.5 s to 1.5 s over a quiet low hum, with its .pv label."""
    n = int(SECONDS * RATE)
    voice = np.zeros(n, np.float32)
    voice[int(TONE_START * RATE):int(TONE_END * RATE)] = harmonic_tone(midi_to_hz(TONE_MIDI), TONE_END - TONE_START,
                                                                       RATE)
    accompaniment = (0.05 * np.sin(2 * np.pi * 60.0 * np.arange(n) / RATE)).astype(np.float32)
    (root / "PitchLabel").mkdir(parents=True, exist_ok=True)
    frames = (n - 640) // 320 + 1  # 40 ms frames every 20 ms, the first centred at 20 ms
    centres = 0.02 + 0.02 * np.arange(frames)
    pitch = np.where((centres >= TONE_START) & (centres < TONE_END), TONE_MIDI, 0.0)
    (root / "PitchLabel" / f"{name}.pv").write_text("".join(f"{v:.6f}\n" for v in pitch))
    if layout == "release":
        (root / "Wavfile").mkdir(exist_ok=True)
        soundfile.write(str(root / "Wavfile" / f"{name}.wav"), np.stack([accompaniment, voice], axis=1), RATE)
    else:
        for folder, audio in (("Voice", voice), ("Accompaniment", accompaniment)):
            (root / folder).mkdir(exist_ok=True)
            write_wav(root / folder / f"{name}.wav", audio, RATE)
    return voice, accompaniment


def test_mir1k_layouts_read_to_the_same_mix_and_label(tmp_path):
    from vocal_melody.lab.synth.real_corpora import mir1k_corpus

    voice, accompaniment = _mir1k_clip(tmp_path / "release", layout="release")
    _mir1k_clip(tmp_path / "two_files", layout="two files")
    rows = {layout: mir1k_corpus(tmp_path / layout, tmp_path / f"out_{layout}", progress=False)
            for layout in ("release", "two_files")}
    assert [r["split"] for r in rows["release"]] == ["test"]  # abjones is a test singer
    labels = {layout: (tmp_path / f"out_{layout}" / "test" / "abjones_1_01.f0.txt").read_text()
              for layout in rows}
    assert labels["release"] == labels["two_files"]
    mixes = {layout: soundfile.read(str(tmp_path / f"out_{layout}" / "test" / "abjones_1_01.flac"))[0]
             for layout in rows}
    np.testing.assert_array_equal(mixes["release"], mixes["two_files"])
    np.testing.assert_allclose(mixes["release"], voice + accompaniment, atol=1e-4)  # the release's mix: the sum

    f0 = read_label(tmp_path / "out_release" / "test" / "abjones_1_01.f0.txt")
    assert len(f0) == 1 + int(SECONDS * 8000) // 80  # the extractor's frames of the mix
    times = np.arange(len(f0)) * 0.01
    voiced = f0 > 0
    np.testing.assert_allclose(hz_to_midi(f0[voiced]), TONE_MIDI, atol=1e-4)
    # on the 10 ms grid the label's frames (every 20 ms) reach half a hop either side
    assert voiced[(times >= TONE_START + 0.011) & (times <= TONE_END - 0.031)].all()
    assert not voiced[(times < TONE_START - 0.011) | (times > TONE_END + 0.001)].any()
    manifest = read_manifest(tmp_path / "out_release" / "manifest.csv")
    np.testing.assert_array_equal(manifest[0].f0, f0)


def test_mir1k_ratio_sets_the_voice_level(tmp_path):
    from vocal_melody.lab.synth.real_corpora import mir1k_mix

    voice, accompaniment = _mir1k_clip(tmp_path)
    mixed = mir1k_mix(voice, accompaniment, -5.0)
    gain = np.linalg.lstsq(np.stack([voice, accompaniment], axis=1), mixed, rcond=None)[0]
    level = 10 * np.log10(np.mean((gain[0] * voice) ** 2) / np.mean((gain[1] * accompaniment) ** 2))
    assert level == pytest.approx(-5.0, abs=0.01)


def test_a_folder_claimed_but_empty_takes_new_settings(tmp_path):
    """A run that failed before its first clip left only corpus.json: other settings may use the folder."""
    from vocal_melody.lab.synth.real_corpora import SETTINGS_FILE, mir1k_corpus

    _mir1k_clip(tmp_path / "src", "amy_1_01", layout="two files")
    out = tmp_path / "out"
    out.mkdir()
    (out / SETTINGS_FILE).write_text('{"corpus": "mir1k", "ratio_db": 3.0}\n')
    rows = mir1k_corpus(tmp_path / "src", out, ratio_db=-5.0, progress=False)
    assert [r["ratio_db"] for r in rows] == [-5.0]
    assert json.loads((out / SETTINGS_FILE).read_text())["ratio_db"] == -5.0
    with pytest.raises(MelodyError, match="other settings \\(corpus mir1k, ratio_db -5.0\\)"):
        mir1k_corpus(tmp_path / "src", out, ratio_db=3.0, progress=False)  # now it holds a clip


def test_mir1k_command_and_its_refusals(tmp_path):
    _mir1k_clip(tmp_path / "src", "amy_1_01", layout="two files")  # amy trains
    command = [sys.executable, str(ROOT / "synth_testset.py"), "mir1k", "--source", str(tmp_path / "src"), "-q"]
    done = subprocess.run([*command, "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(open(tmp_path / "out" / "manifest.csv")))
    assert [(r["id"], r["split"], r["singer"], r["ratio_db"]) for r in rows] == [("amy_1_01", "train", "amy",
                                                                                  "release")]
    other = subprocess.run([*command, "--ratio-db", "-5", "-o", str(tmp_path / "out")], capture_output=True,
                           text=True)
    assert other.returncode == 1 and "other settings" in other.stderr and len(other.stderr.splitlines()) == 1
    missing = subprocess.run([*command[:4], str(tmp_path / "nothing"), "-o", str(tmp_path / "x")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "not a MIR-1K folder" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_no_singer_in_two_splits():
    held_out = [s for singers in mir1k.SINGER_SPLITS.values() for s in singers]
    assert len(held_out) == len(set(held_out))
    assert set(held_out) <= set(mir1k.SINGER_MEDIAN_MIDI)
    for split, singers in mir1k.SINGER_SPLITS.items():  # low and high voices in each held-out split
        medians = [mir1k.SINGER_MEDIAN_MIDI[s] for s in singers]
        assert min(medians) < 55 and max(medians) >= 60, split


@pytest.mark.skipif(not (SHARED_DATA / "labeled_research" / "mir1k").exists(), reason="needs ../shared/data")
def test_shared_mir1k_splits_by_singer():
    clips = mir1k.find_clips(SHARED_DATA / "labeled_research" / "mir1k")
    assert len(clips) == 916
    splits_of = {}
    for clip in clips:
        splits_of.setdefault(clip.singer, set()).add(clip.split)
    assert all(len(splits) == 1 for splits in splits_of.values())
    counts = {split: sum(c.split == split for c in clips) for split in ("train", "val", "test")}
    assert counts == {"train": 581, "val": 135, "test": 200}


@pytest.mark.skipif(not (SHARED_DATA / "voice_research" / "ssvd_v2").exists(), reason="needs ../shared/data")
def test_shared_ssvd_keeps_its_authors_split():
    recordings = ssvd.find_recordings(SHARED_DATA / "voice_research" / "ssvd_v2")
    by_split = {split: {r.name for r in recordings if r.split == split} for split in ("train", "val", "test")}
    assert {k: len(v) for k, v in by_split.items()} == {"train": 67, "val": 64, "test": 63}
    assert not (by_split["train"] & by_split["val"]) and not (by_split["val"] & by_split["test"])
    assert all(r.audio.parent.name == "train_valid" for r in recordings if r.split == "train")


def test_note_gating_keeps_the_sung_notes_within_tolerance():
    f0 = np.zeros(300)
    f0[20:100] = midi_to_hz(60.0)
    f0[120:200] = midi_to_hz(62.3)            # 30 cents sharp of its note: kept
    f0[220:280] = midi_to_hz(64.0 + 12.0)     # an octave error: dropped
    notes = np.array([[0.2, 1.0, 60.0], [1.2, 1.6, 62.0], [2.2, 2.8, 64.0]])  # no note over frames 160-199
    gated = ssvd.gate_by_notes(f0, notes, tolerance_cents=200)
    np.testing.assert_array_equal(gated[20:100], f0[20:100])
    np.testing.assert_array_equal(gated[120:160], f0[120:160])
    assert not gated[160:].any() and not gated[:20].any()
    assert not ssvd.gate_by_notes(f0, notes, tolerance_cents=20)[120:160].any()
    agreement = ssvd.note_agreement(f0, notes, 200)
    assert agreement["voiced_in_notes"] == pytest.approx(180 / 180)
    assert agreement["within_tolerance"] == pytest.approx(120 / 180)
    assert agreement["voiced_outside_notes"] == pytest.approx(40 / 220)


def test_ssvd_label_of_a_synthetic_voice_with_known_f0(tmp_path):
    """The real path: WORLD's gated analysis of a voice whose f0 is known, gated by its notes."""
    from vocal_melody.lab.synth.compose import SourceCache
    from vocal_melody.lab.synth.real_corpora import ssvd_label

    rate = 16000
    audio = np.zeros(3 * rate, np.float32)
    audio[int(0.5 * rate):int(1.3 * rate)] = harmonic_tone(midi_to_hz(62.0), 0.8, rate)
    audio[int(1.6 * rate):int(2.6 * rate)] = harmonic_tone(midi_to_hz(66.0), 1.0, rate)
    folder = tmp_path / "ssvd" / "test"
    folder.mkdir(parents=True)
    write_wav(folder / "a.wav", audio, rate)
    (folder / "a.txt").write_text("0.5\t1.3\t62.0\n1.6\t2.2\t54.0\n")  # the second note annotated an octave low
    recording = ssvd.find_recordings(tmp_path / "ssvd")[0]
    assert recording.split == "val"
    f0 = ssvd_label(SourceCache(tmp_path / "cache", rate), recording, len(audio))
    assert len(f0) == 1 + int(3 * 8000) // 80
    times = np.arange(len(f0)) * 0.01
    inner = (times >= 0.55) & (times <= 1.25)
    assert (f0[inner] > 0).mean() > 0.95
    np.testing.assert_allclose(np.median(hz_to_midi(f0[inner & (f0 > 0)])), 62.0, atol=0.1)
    assert not f0[times > 1.35].any()  # the octave-off note and everything after the notes: unvoiced
    assert not f0[times < 0.45].any()


def test_ssvd_refuses_a_folder_without_recordings(tmp_path):
    with pytest.raises(MelodyError, match="not an SSVD folder"):
        ssvd.find_recordings(tmp_path)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "bad.txt").write_text("1.0\t0.5\t60\n")
    write_wav(tmp_path / "test" / "bad.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(MelodyError, match="ends before it starts"):
        ssvd.read_notes(tmp_path / "test" / "bad.txt")


def test_group_mean_weighs_each_group_the_same():
    scores = [{"VR": 1.0, "VFA": 0.0, "RPA": 1.0, "RCA": 1.0, "OA": value} for value in (0.9, 0.9, 0.9, 0.3)]
    groups = ["synth", "synth", "synth", "real"]
    assert mean_scores(scores)["OA"] == pytest.approx(0.75)
    assert group_mean_scores(scores, groups)["OA"] == pytest.approx(0.6)


def test_validation_means_leave_voice_metrics_of_voiceless_tracks_out():
    times = np.arange(100) * 0.01
    sung, silent = np.full(100, 220.0), np.zeros(100)
    scores = [defined_scores(melody_scores(times, sung, times, sung * 2 ** (30 / 1200)), sung),  # 30 cents: still right
              defined_scores(melody_scores(times, silent, times, silent), silent)]
    assert scores[1]["OA"] == 1.0 and np.isnan(scores[1]["VR"]) and np.isnan(scores[1]["RPA"])
    mean = group_mean_scores(scores, ["real", "instrumental"])
    assert mean["VR"] == mean["RPA"] == 1.0 and mean["OA"] == 1.0  # mir_eval: VR 1, RPA 0 for the silent track
    assert np.isnan(mean_scores([scores[1]])["VR"])


def test_compose_never_takes_the_ssvd_corpus_for_voice_material(tmp_path):
    from vocal_melody.lab.synth.compose import discover_sources

    for group in ("a", "b", "c", "ssvd_v2/test", "ssvd_v2/train_valid"):
        (tmp_path / group).mkdir(parents=True)
        write_wav(tmp_path / group / "x.wav", np.zeros(1600, np.float32), 16000)
    sources = discover_sources([tmp_path], [])
    used = {v.group for split in sources.voices.values() for v in split}
    assert used == {"a", "b", "c"}
