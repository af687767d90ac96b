import numpy as np
import pytest
from conftest import harmonic_tone, write_wav

from vocal_melody import labels
from vocal_melody.lab.corpora.datasets import (
    FeatureCache,
    frame_classes,
    pair_folder,
    read_label,
    read_manifest,
    to_frame_grid,
    unlabeled_folder,
)
from vocal_melody.errors import MelodyError


def test_nearest_frame_grid_never_interpolates_through_gaps():
    # a 5.8 ms label (vocadito style): voiced, a gap, voiced at another pitch
    times = np.arange(0, 0.2, 0.0058)
    f0 = np.where(times < 0.06, 200.0, np.where(times < 0.1, 0.0, 300.0))
    grid = to_frame_grid(times, f0)
    assert set(np.unique(grid)) <= {0.0, 200.0, 300.0}  # no invented pitches
    assert grid[0] == 200.0 and grid[8] == 0.0 and grid[15] == 300.0


def test_grid_is_unvoiced_beyond_the_label():
    grid = to_frame_grid(np.array([0.0, 0.01, 0.02]), np.array([100.0, 100.0, 100.0]), n_frames=6)
    assert grid.tolist() == [100.0, 100.0, 100.0, 0.0, 0.0, 0.0]


def test_mir1k_pv(tmp_path):
    # 20 ms hop, first frame centred at 20 ms, semitones (MIDI numbers), 0 = unvoiced
    path = tmp_path / "abjones_1_01.pv"
    path.write_text("0\n57.0\n57.0\n69.0\n0\n")
    grid = read_label(path, "mir1k")  # label frames at 20, 40, 60, 80, 100 ms
    assert grid[4] == pytest.approx(220.0) and grid[6] == pytest.approx(220.0)
    assert grid[8] == pytest.approx(440.0)
    assert grid[0] == 0.0 and grid[2] == 0.0 and grid[10] == 0.0
    assert grid[5] == pytest.approx(220.0)  # 50 ms: between two 220 Hz label frames


def test_ikala_pv(tmp_path):
    path = tmp_path / "10161_chorus.pv"
    path.write_text("69\n69\n0\n57\n")
    grid = read_label(path, "ikala")  # frames at 16, 48, 80, 112 ms
    assert grid[2] == pytest.approx(440.0) and grid[5] == pytest.approx(440.0)
    assert grid[8] == 0.0 and grid[11] == pytest.approx(220.0)


@pytest.mark.parametrize("name, text", [
    ("songREF.txt", "0.000\t0\n0.0058\t220.0\n0.0116\t220.0\n0.0174\t220.0\n0.0232\t0\n"),  # ADC2004/MIREX05
    ("song_MELODY2.csv", "0.0,0.0\n0.0058,220.0\n0.0116,220.0\n0.0174,220.0\n0.0232,0.0\n"),  # MedleyDB
    ("song_f0.csv", "0.0,0.0\n0.0058,220.0\n0.0116,220.0\n0.0174,220.0\n0.0232,0.0\n"),  # vocadito
])
def test_two_column_formats(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    grid = read_label(path, "f0")
    assert grid.tolist() == [0.0, 220.0, 220.0]


def test_unknown_label_format(tmp_path):
    with pytest.raises(MelodyError, match="unknown label format"):
        read_label(tmp_path / "x.pv", "rwc")


def test_manifest_and_folder_pairs(tmp_path):
    (tmp_path / "train").mkdir()
    write_wav(tmp_path / "train" / "a.wav", harmonic_tone(220, 0.5, 8000), 8000)
    (tmp_path / "train" / "a.f0.txt").write_text("0.00 0.0000\n0.01 220.0000\n")
    (tmp_path / "manifest.csv").write_text("id,split,audio,label\na,train,train/a.wav,train/a.f0.txt\n"
                                           "b,val,train/a.wav,train/a.f0.txt\n")
    tracks = read_manifest(tmp_path / "manifest.csv", splits=("train",))
    assert [t.name for t in tracks] == ["a"] and tracks[0].f0.tolist() == [0.0, 220.0]
    paired = pair_folder(tmp_path / "train")
    assert paired[0].name == "a" and paired[0].f0[1] == 220.0
    assert len(unlabeled_folder([tmp_path])) == 1
    assert unlabeled_folder([tmp_path], shard=(1, 2)) == []


def test_bad_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("x,y\n1,2\n")
    with pytest.raises(MelodyError, match="not a manifest"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "text.csv").write_text("just a line\n")  # a header without the columns, not "no rows"
    with pytest.raises(MelodyError, match="text.csv: not a manifest"):
        read_manifest(tmp_path / "text.csv")
    (tmp_path / "binary.csv").write_bytes(bytes(range(128, 256)))
    with pytest.raises(MelodyError, match="binary.csv: not a manifest"):
        read_manifest(tmp_path / "binary.csv")


def test_frame_classes_pad_and_cut():
    f0 = np.array([0.0, 440.0])
    assert frame_classes(f0, 4).tolist() == [0, 233, 0, 0]
    assert frame_classes(f0, 1).tolist() == [0]
    assert labels.class_to_f0(np.array([233]))[0] == pytest.approx(440.0)


def test_feature_cache_is_keyed_by_content_and_reused(tmp_path):
    from vocal_melody import features as fe

    wav = write_wav(tmp_path / "a.wav", harmonic_tone(220, 0.5, 8000), 8000)
    cache = FeatureCache(tmp_path / "cache")
    first = cache.spectrogram(wav)
    assert first.dtype == np.float16 and isinstance(first, np.memmap)
    np.testing.assert_allclose(first, fe.spectrogram(fe.load_audio(wav)), atol=0.05)
    entries = list((tmp_path / "cache").glob("*.npy"))
    assert len(entries) == 1
    mtime = entries[0].stat().st_mtime_ns
    cache.spectrogram(wav)
    assert entries[0].stat().st_mtime_ns == mtime  # reused, not recomputed
    write_wav(wav, harmonic_tone(330, 0.5, 8000), 8000)  # new content, same name
    cache.spectrogram(wav)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    assert not list((tmp_path / "cache").glob("*.tmp"))
