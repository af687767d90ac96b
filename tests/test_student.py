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


def _frame_data(lengths, soft_class, label_class):
    """FrameData of silent spectrograms labeled ``label_class`` with a teacher sure of ``soft_class``."""
    from vocal_melody import features
    from vocal_melody.labels import N_CLASSES
    from vocal_melody.lab.training.frames import FrameData

    specs = [np.full((n, features.N_BINS), -80.0, np.float32) for n in lengths]
    classes = [np.full(n, label_class, np.int64) for n in lengths]
    soft = [np.zeros((n, N_CLASSES), np.float16) for n in lengths]
    for distribution in soft:
        distribution[:, soft_class] = 1.0
    return FrameData([None] * len(lengths), specs, classes, soft)


def test_soft_targets_blend_the_teachers_distribution_with_the_label():
    """``soft_weight`` W: target = W x the teacher's distribution + (1 - W) x the label's, on labeled and pseudo-labeled
    windows, no voice past a track's end; the windows drawn are those of the hard-label batch."""
    from vocal_melody import features
    from vocal_melody.lab.training.student import mixed_batch

    labeled, unlabeled = _frame_data([20], soft_class=100, label_class=50), _frame_data([40], 0, 200)
    mean, std = np.zeros((31, features.N_BINS), np.float32), np.ones((31, features.N_BINS), np.float32)
    options = dict(batch_size=4, ratio=(1, 1), sigma=0.0, unlabeled_weight=1.0, seed=3)
    x, targets, _ = mixed_batch(labeled, unlabeled, mean, std, soft_weight=0.25, **options)(0, 0)
    x_hard, targets_hard, _ = mixed_batch(labeled, unlabeled, mean, std, **options)(0, 0)
    np.testing.assert_array_equal(x, x_hard)
    # labeled rows: 20 frames of the track (label 50, teacher 100), then no voice
    np.testing.assert_allclose(targets[:2, :20, 50], 0.75)
    np.testing.assert_allclose(targets[:2, :20, 100], 0.25)
    np.testing.assert_allclose(targets[:2, 20:, 0], 1.0)
    # pseudo-labeled rows: pseudo label 200, a teacher sure of no voice
    np.testing.assert_allclose(targets[2:, :, 200], 0.75)
    np.testing.assert_allclose(targets[2:, :, 0], 0.25)
    np.testing.assert_allclose(targets.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(targets_hard.argmax(-1)[:2, :20], 50)
    with pytest.raises(ValueError, match="distributions"):
        without = type(unlabeled)(unlabeled.tracks, unlabeled.specs, unlabeled.classes)
        mixed_batch(labeled, without, mean, std, soft_weight=0.5, **options)
    with pytest.raises(ValueError, match="soft_weight"):
        mixed_batch(labeled, unlabeled, mean, std, soft_weight=1.5, **options)


@pytest.mark.heavy
def test_a_student_distils_the_teachers_distributions_from_a_bundle_of_its_widths(corpus, tmp_path):
    """``--soft-targets`` caches the teacher's distribution of each clean file once (ns); ``--init BUNDLE`` starts
    the student from that bundle; both are recorded in the student's bundle."""
    from vocal_melody.bundle import read_bundle
    from vocal_melody.lab.training.student import StudentData, load_teacher

    folder, manifest, teacher = corpus
    start = save_random_bundle(tmp_path / "start.npz", seed=5)
    cache = tmp_path / "cache"
    run = tmp_path / "run"
    result = run_student("--teacher", teacher, "--setup", "ns", "--labeled", manifest, "--unlabeled",
                         folder / "corpus" / "val", "--run-dir", run, "--cache-dir", cache, "--soft-targets", "0.5",
                         "--init", start, "--lr", "1e-9", *TINY)
    assert result.returncode == 0, result.stderr
    soft = sorted((cache / "soft").glob("*.npz"))
    assert len(soft) == 3  # 2 labeled files + 1 unlabeled, each heard clean by the teacher
    student = read_bundle(run / "iter1" / "last.npz")
    training = student.config["training"]
    assert training["soft_targets"] == 0.5 and training["init"] == str(start)
    first_kernel = student.weights[0]  # a learning rate of 1e-9 keeps the start (batch statistics still move)
    np.testing.assert_allclose(first_kernel, read_bundle(start).weights[0], atol=1e-5)
    assert not np.allclose(first_kernel, read_bundle(teacher).weights[0], atol=1e-3)
    track = type("Track", (), {"audio": sorted((folder / "corpus" / "val").glob("*.wav"))[0]})
    store = StudentData(cache, 1, 0, False, False)
    spec = store.features.spectrogram(track.audio)
    extractor = load_teacher(teacher)
    from vocal_melody.cache import file_digest

    cached = store.teacher_distributions(extractor, file_digest(teacher), track, "", spec)
    np.testing.assert_allclose(cached, extractor.activations_from_spectrogram(spec), atol=1e-3)


def test_bad_distillation_options(corpus, tmp_path):
    folder, manifest, teacher = corpus
    common = ["--teacher", teacher, "--labeled", manifest, "--unlabeled", folder / "corpus" / "val"]
    missing = run_student(*common, "--init", tmp_path / "none.npz", "--run-dir", tmp_path / "r1")
    assert missing.returncode == 1 and "--init" in missing.stderr and "no such bundle" in missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "r1").exists()
    weight = run_student(*common, "--soft-targets", "1.5", "--run-dir", tmp_path / "r2")
    assert weight.returncode == 2 and "--soft-targets" in weight.stderr and "Traceback" not in weight.stderr
    folder_run = run_student("--teacher", teacher, "--data", tmp_path, "--soft-targets", "0.5",
                             "--run-dir", tmp_path / "r3")
    assert folder_run.returncode == 1 and "training folder" in folder_run.stderr
    other = save_random_bundle(tmp_path / "wide.npz", {"filters": [8, 8, 8, 8], "lstm_units": 8})
    widths = run_student(*common, "--init", other, "--run-dir", tmp_path / "r4", "--cache-dir", tmp_path / "c", *TINY)
    assert widths.returncode == 1 and "different model" in widths.stderr and "Traceback" not in widths.stderr
