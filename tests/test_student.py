import csv

import numpy as np
import pytest
from conftest import make_tone_corpus, run_in_process, save_random_bundle

TINY = ["--batch-size", "4", "--steps-per-epoch", "2", "--max-epochs", "1", "-q"]


def run_student(*args):
    """train_student.py's work in this process (the script itself runs in tests/test_training_folder.py)."""
    from vocal_melody.lab.cli import train_student

    return run_in_process(train_student.main, *args)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student")
    manifest = make_tone_corpus(folder / "corpus", n_train=2, n_val=1)
    teacher = save_random_bundle(folder / "teacher.npz")
    return folder, manifest, teacher


@pytest.mark.heavy
@pytest.mark.parametrize("setup", ["bts", "nts", "ns"])
def test_each_setup_trains_a_student(corpus, setup):
    folder, manifest, teacher = corpus
    run = folder / f"run_{setup}"
    result = run_student("--teacher", teacher, "--setup", setup, "--labeled", manifest,
                         "--unlabeled", folder / "corpus" / "val", "--run-dir", run,
                         "--cache-dir", folder / f"cache_{setup}", *TINY)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(run / "iterations.csv")))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["best_val_OA"]) <= 1.0
    pseudo = list((folder / f"cache_{setup}" / "pseudo").glob("*.npz"))
    # bts/ns: the teacher labels the clean file once; nts: it labels the one augmented view
    assert len(pseudo) == 1
    features = list((folder / f"cache_{setup}" / "features").glob("*.npy"))
    # the unlabeled file is the validation file here, so its clean features are shared
    augmented_views = 0 if setup == "bts" else 3  # k=1 chain for 2 labeled + 1 unlabeled file
    clean = 3 if setup == "bts" else 1  # bts: 2 labeled + val; noisy setups: val only
    assert len(features) == augmented_views + clean


@pytest.mark.heavy
def test_bf16_iterations_chain_teachers_and_pseudo_labels_are_cached(corpus):
    """Iteration 2's teacher is iteration 1's student, and the bf16 policy of iteration 1's training must not
    reach that teacher's conversion."""
    folder, manifest, teacher = corpus
    run = folder / "run_iter"
    cache = folder / "cache_iter"
    args = ["--teacher", teacher, "--setup", "ns", "--iterations", "2", "--labeled", manifest,
            "--unlabeled-manifest", manifest, "--unlabeled-split", "train", "--run-dir", run, "--cache-dir", cache,
            "--mixed-precision", "bf16"]
    result = run_student(*args, *TINY)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(run / "iterations.csv")))
    assert [r["iteration"] for r in rows] == ["1", "2"]
    assert rows[1]["teacher"].endswith("iter1/best.npz")
    pseudo_files = sorted((cache / "pseudo").glob("*.npz"))
    assert len(pseudo_files) == 4  # 2 unlabeled files x 2 teachers
    again = run_student(*args, *TINY)
    assert again.returncode != 0 and "--resume" in again.stderr
    mtimes = [p.stat().st_mtime_ns for p in pseudo_files]
    prepared = run_student("--teacher", teacher, "--setup", "ns", "--unlabeled-manifest", manifest,
                           "--unlabeled-split", "train", "--run-dir", folder / "prep", "--cache-dir", cache,
                           "--prepare-only", "--shard", "1/2", "-q")
    assert prepared.returncode == 0, prepared.stderr
    assert [p.stat().st_mtime_ns for p in pseudo_files] == mtimes  # cached: not recomputed


def test_bad_student_options(corpus, tmp_path):
    folder, manifest, teacher = corpus
    missing = run_student("--teacher", tmp_path / "none.npz", "--labeled", manifest, "--unlabeled", tmp_path,
                          "--run-dir", tmp_path / "r")
    assert missing.returncode == 1 and "teacher bundle" in missing.stderr and "Traceback" not in missing.stderr
    shard = run_student("--teacher", teacher, "--shard", "3/2", "--run-dir", tmp_path / "r")
    assert shard.returncode == 2 and "shard" in shard.stderr
    rule = run_student("--teacher", teacher, "--pseudo-voicing", "2", "--run-dir", tmp_path / "r")
    assert rule.returncode == 2 and "between 0 and 1" in rule.stderr and "Traceback" not in rule.stderr


@pytest.mark.heavy
def test_time_budget_is_per_call_so_a_resumed_run_goes_on(corpus):
    """The recipe reruns the same command with the same --max-minutes until the student is done."""
    from vocal_melody.bundle import read_bundle

    folder, manifest, teacher = corpus
    run = folder / "run_budget"
    args = ["--teacher", teacher, "--setup", "ns", "--labeled", manifest, "--unlabeled", folder / "corpus" / "val",
            "--run-dir", run, "--cache-dir", folder / "cache_budget", "--batch-size", "4",
            "--steps-per-epoch", "100000", "--max-epochs", "1", "--max-minutes", "0.1"]
    first = run_student(*args)
    assert first.returncode == 0, first.stderr
    assert "time budget" in first.stderr and "--resume" in first.stderr
    steps_first = read_bundle(run / "iter1" / "last.npz").config["state"]["step"]
    second = run_student(*args, "--resume", "-q")
    assert second.returncode == 0, second.stderr
    state = read_bundle(run / "iter1" / "last.npz").config["state"]
    assert state["epoch"] == 0 and state["step"] > steps_first > 0
    assert not (run / "iterations.csv").exists()  # the iteration is not finished


@pytest.mark.heavy
def test_a_student_with_a_frozen_backbone_keeps_its_teachers_resnet_blocks(corpus, tmp_path):
    from vocal_melody.bundle import read_bundle

    folder, manifest, teacher = corpus
    run = tmp_path / "run"
    common = ["--teacher", teacher, "--setup", "bts", "--labeled", manifest, "--unlabeled", folder / "corpus" / "val",
              "--cache-dir", folder / "cache_frozen", "--freeze-backbone"]
    result = run_student(*common, "--run-dir", run, "--lr", "1e-2", *TINY)
    assert result.returncode == 0, result.stderr
    start, student = read_bundle(teacher), read_bundle(run / "iter1" / "last.npz")
    changed = [not np.array_equal(a, b) for a, b in zip(start.weights, student.weights)]
    # the model's last 8 arrays: the BiLSTM (kernel, recurrent kernel, bias per direction) and the output layer
    assert not any(changed[:-8]) and all(changed[-8:]), changed
    scratch = run_student(*common, "--run-dir", tmp_path / "scratch", "--init", "scratch", *TINY)
    assert scratch.returncode == 1 and "--freeze-backbone" in scratch.stderr and "Traceback" not in scratch.stderr
    assert not (tmp_path / "scratch").exists()


@pytest.mark.heavy
def test_pseudo_labels_follow_the_voicing_rule(corpus, tmp_path):
    """``--pseudo-voicing``: argmax (the paper's), the teacher's stored threshold, or a threshold given; each rule's
    labels a cache entry of their own."""
    from types import SimpleNamespace

    from vocal_melody.bundle import read_bundle, save_bundle
    from vocal_melody.inference.decoding import decoded_classes
    from vocal_melody.lab.training.student import StudentData, load_teacher

    folder, manifest, teacher = corpus
    track = SimpleNamespace(audio=sorted((folder / "corpus" / "train").glob("*.wav"))[0])
    spec = StudentData(tmp_path, 1, 0, False, False).features.spectrogram(track.audio)
    activations = load_teacher(teacher).activations_from_spectrogram(spec)
    stored, given = (float(q) for q in np.quantile(1.0 - activations[:, 0], [0.5, 0.25]))
    bundle = read_bundle(teacher)
    tuned = load_teacher(save_bundle(tmp_path / "tuned.npz", bundle.weights, bundle.mean, bundle.std,
                                     {**bundle.config, "decoding": {"voicing_threshold": stored}}))
    expected = {"argmax": np.argmax(activations, axis=1), "tuned": decoded_classes(activations, stored),
                given: decoded_classes(activations, given)}
    for rule, classes in expected.items():
        store = StudentData(tmp_path / "cache", 1, 0, False, False, pseudo_voicing=rule)
        np.testing.assert_array_equal(store.pseudo_labels(tuned, "digest", track, "", spec), classes)
    # a random teacher voices every frame by argmax; the thresholds voice about a half and three quarters
    assert (expected["tuned"] > 0).sum() < (expected[given] > 0).sum() < len(spec)
    assert len(list((tmp_path / "cache" / "pseudo").glob("*.npz"))) == 3
    for bad in ("soft", 1.5, True):
        with pytest.raises(ValueError, match="pseudo_voicing"):
            StudentData(tmp_path, 1, 0, False, False, pseudo_voicing=bad)
