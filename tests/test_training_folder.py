"""The GPU path of the recipe: a training folder exported on the CPU side, trained under Keras's JAX backend."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from conftest import ROOT, make_tone_corpus, save_random_bundle

TINY = ["--batch-size", "4", "--steps-per-epoch", "2", "--max-epochs", "1", "-q"]
jax = pytest.importorskip("jax")


def run_student(*args, backend="tensorflow"):
    env = dict(os.environ, KERAS_BACKEND=backend)
    return subprocess.run([sys.executable, str(ROOT / "train_student.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("folder")
    manifest = make_tone_corpus(folder / "corpus", n_train=2, n_val=1)
    teacher = save_random_bundle(folder / "teacher.npz")
    data = folder / "export"
    result = run_student("--teacher", teacher, "--setup", "ns", "--labeled", manifest,
                         "--unlabeled", folder / "corpus" / "val", "--export", data,
                         "--cache-dir", folder / "cache", "-q")
    assert result.returncode == 0, result.stderr
    return folder, manifest, teacher, data


def test_export_writes_8khz_flac_views_with_labels_and_pseudo_labels(exported):
    folder, manifest, teacher, data = exported
    rows = list(csv.DictReader(open(data / "manifest.csv")))
    assert sorted({r["split"] for r in rows}) == ["pseudo", "train", "val"]
    assert [r["split"] for r in rows].count("train") == 2 and [r["split"] for r in rows].count("val") == 1
    info = json.loads((data / "export.json").read_text())
    assert info["setup"] == "ns" and info["format"] == "melody-training-folder/1"
    for row in rows:
        audio, rate = soundfile.read(data / row["audio"])
        assert rate == 8000 and audio.ndim == 1
        label = np.loadtxt(data / row["label"])
        assert abs(len(label) - (1 + len(audio) // 80)) <= 1
    # a labeled tone keeps its true label through the export (pitch classes round-trip)
    from vocal_melody.lab.corpora.datasets import read_manifest
    from vocal_melody.labels import f0_to_class

    original = {t.name: t for t in read_manifest(manifest, splits=("train",))}
    exported_train = [r for r in rows if r["split"] == "train"]
    for row in exported_train:
        f0 = np.loadtxt(data / row["label"])[:, 1]
        source = next(t for t in original.values() if str(t.audio) == row["source"])
        n = min(len(f0), len(source.f0))
        assert (f0_to_class(f0[:n]) == f0_to_class(source.f0[:n])).all()
    # the noisy student's views are augmented: not the clean audio
    from vocal_melody import features

    for row in exported_train:
        clean = features.load_audio(row["source"])
        view = soundfile.read(data / row["audio"])[0]
        assert len(view) != len(clean) or np.abs(view - clean).max() > 0.01


def test_export_takes_several_labeled_corpora_and_validation_sets(exported):
    """--labeled and --val take several manifests: their splits are pooled (e.g. a corpus plus labeled real singing)."""
    folder, manifest, teacher, _ = exported
    second = make_tone_corpus(folder / "corpus2", n_train=1, n_val=2)
    data = folder / "export_two"
    result = run_student("--teacher", teacher, "--setup", "ns", "--labeled", manifest, second, "--val", second,
                         "--unlabeled", folder / "corpus" / "val", "--export", data, "--cache-dir", folder / "cache",
                         "-q")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(data / "manifest.csv")))
    sources = {split: [r["source"] for r in rows if r["split"] == split] for split in ("train", "val")}
    assert len(sources["train"]) == 3 and sum("corpus2" in s for s in sources["train"]) == 1
    assert len(sources["val"]) == 2 and all("corpus2" in s for s in sources["val"])
    info = json.loads((data / "export.json").read_text())
    assert info["sources"]["labeled"] == [str(manifest), str(second)]


def test_export_refuses_an_existing_folder(exported):
    folder, manifest, teacher, data = exported
    again = run_student("--teacher", teacher, "--labeled", manifest, "--unlabeled", folder / "corpus" / "val",
                        "--export", data, "--cache-dir", folder / "cache", "-q")
    assert again.returncode == 1 and "already holds a training folder" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.heavy
def test_jax_backend_trains_without_tensorflow_and_tensorflow_loads_the_bundle(exported, tmp_path):
    """As on the GPU machine: Keras on JAX, and TensorFlow (and OpenVINO) cannot be imported at all."""
    folder, manifest, teacher, data = exported
    run = tmp_path / "run"
    code = f"""
import importlib.abc, runpy, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "openvino", "tf_keras"):
            raise ImportError(f"no module named {{name}} here")
        return None

sys.meta_path.insert(0, NoTensorFlow())
sys.argv = ["train_student.py", "--teacher", {str(teacher)!r}, "--data", {str(data)!r}, "--run-dir",
            {str(run)!r}, "--cache-dir", {str(tmp_path / 'c')!r}, "--unvoiced-weight", "2",
            "--voicing-loss-weight", "0.5", *{TINY!r}]
try:
    runpy.run_path({str(ROOT / 'train_student.py')!r}, run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
import keras
print("trained on", keras.backend.backend())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr
    assert "trained on jax" in result.stdout
    best = run / "iter1" / "best.npz"
    check = subprocess.run([sys.executable, "-c", f"""
import sys, numpy as np
from vocal_melody.inference.extractor import MelodyExtractor
from vocal_melody.bundle import read_bundle
bundle = read_bundle({str(best)!r})
assert bundle.config["training"]["unvoiced_weight"] == 2.0
assert bundle.config["training"]["voicing_loss_weight"] == 0.5
assert bundle.config["decoding"]["val_OA_tuned"] >= 0
spec = np.random.default_rng(0).uniform(-80, 0, (40, 513)).astype(np.float32)
tf_out = MelodyExtractor({str(best)!r}, engine="tf").activations_from_spectrogram(spec)
ov_out = MelodyExtractor({str(best)!r}, engine="openvino").activations_from_spectrogram(spec)
assert tf_out.shape == (40, 442) and np.isfinite(tf_out).all()
assert np.abs(tf_out - ov_out).max() < 1e-3, np.abs(tf_out - ov_out).max()
print("loaded")
"""], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    assert "loaded" in check.stdout


def test_data_refuses_another_teachers_folder(exported, tmp_path):
    folder, manifest, teacher, data = exported
    other = save_random_bundle(tmp_path / "other.npz", seed=1)
    result = run_student("--teacher", other, "--data", data, "--run-dir", tmp_path / "run", *TINY, backend="jax")
    assert result.returncode == 1 and "pseudo labels of another teacher" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "iter1").exists()


def test_bad_input_of_export_and_data_leaves_no_folder(exported, tmp_path):
    folder, manifest, teacher, data = exported
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"")
    result = run_student("--teacher", broken, "--data", data, "--run-dir", tmp_path / "run", *TINY, backend="jax")
    assert result.returncode == 1 and "not a valid weights bundle" in result.stderr and "Traceback" not in result.stderr
    not_audio = tmp_path / "song.wav"
    not_audio.write_text("not audio\n" * 40)
    result = run_student("--teacher", teacher, "--labeled", manifest, "--unlabeled", not_audio,
                         "--export", tmp_path / "export", "--cache-dir", tmp_path / "c", "-q")
    assert result.returncode == 1 and "not a readable audio file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "export").exists()
