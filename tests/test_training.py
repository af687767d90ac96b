import csv
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, TINY_MODEL, make_tone_corpus, run_in_process, save_random_bundle

from vocal_melody.bundle import read_bundle
from vocal_melody.lab.corpora.datasets import FeatureCache, read_manifest

TINY_ARGS = ["--filters", "4,4,4,4", "--lstm-units", "4", "--batch-size", "4", "-q"]


def run_teacher(*args):
    """train_teacher.py's work in this process (the script itself runs in the kill-and-resume test)."""
    from vocal_melody.lab.cli import train_teacher

    return run_in_process(train_teacher.main, *args)


def run_teacher_script(*args):
    """train_teacher.py in a process of its own (what must happen before TensorFlow starts)."""
    return subprocess.run([sys.executable, str(ROOT / "train_teacher.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=240)


def test_teacher_lowers_its_loss(tmp_path):
    from vocal_melody.lab.training.frames import (
        load_frame_data,
        normalization_stats,
        supervised_batch,
    )
    from vocal_melody.lab.training.loop import TrainConfig, Trainer

    manifest = make_tone_corpus(tmp_path / "corpus")
    data = load_frame_data(read_manifest(manifest, ("train",)), FeatureCache(tmp_path / "cache"), progress=False)
    mean, std = normalization_stats(data.specs)
    assert mean.shape == std.shape == (31, 513)
    config = TrainConfig(run_dir=tmp_path / "run", batch_size=8, learning_rate=1e-2, progress=False)
    trainer = Trainer(dict(TINY_MODEL), config, mean, std)
    make_batch = supervised_batch(data, mean, std, 8, 1.0, seed=0)
    losses = [float(np.asarray(trainer.model.train_on_batch(*make_batch(0, step)[:2])).reshape(-1)[0])
              for step in range(40)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_resume_keeps_the_runs_learning_rate_unless_another_is_given(tmp_path, capsys):
    """The optimizer's state holds its learning rate: --lr on a resume must still apply, and be recorded."""
    from vocal_melody.lab.training.loop import DEFAULT_LEARNING_RATE, TrainConfig, Trainer

    mean, std = np.zeros((31, 513), np.float32), np.ones((31, 513), np.float32)

    def trainer(learning_rate):
        return Trainer(dict(TINY_MODEL), TrainConfig(run_dir=tmp_path / "run", learning_rate=learning_rate), mean,
                       std)

    assert trainer(None).learning_rate == DEFAULT_LEARNING_RATE
    first = trainer(3e-4)
    first.save_checkpoint()
    kept = trainer(None)
    assert kept.resume() and kept.learning_rate == 3e-4 and "resumed at" not in capsys.readouterr().err
    lowered = trainer(1e-4)
    assert lowered.resume() and lowered.learning_rate == 1e-4
    assert "resumed at learning rate 0.0001 (the run's was 0.0003)" in capsys.readouterr().err
    lowered.save_checkpoint()
    assert read_bundle(tmp_path / "run" / "last.npz").config["training"]["learning_rate"] == 1e-4


def test_a_run_stopped_early_goes_on_only_under_a_larger_patience(tmp_path, capsys):
    from vocal_melody.lab.training.loop import TrainConfig, Trainer

    mean, std = np.zeros((31, 513), np.float32), np.ones((31, 513), np.float32)

    def trainer(patience):
        return Trainer(dict(TINY_MODEL), TrainConfig(run_dir=tmp_path / "run", patience=patience), mean, std)

    stopped = trainer(3)
    stopped.state.stale_epochs, stopped.state.finished = 3, True
    stopped.save_checkpoint()
    same = trainer(3)
    assert same.resume() and same.state.finished
    larger = trainer(5)
    assert larger.resume() and not larger.state.finished and larger.state.stale_epochs == 3
    assert "going on under --patience 5" in capsys.readouterr().err
    kept = trainer(5)  # a student iteration whose best has taught the next stays as it was
    assert kept.resume(reopen=False) and kept.state.finished


def test_batches_are_reproducible_from_seed_epoch_and_step(tmp_path):
    from vocal_melody.lab.training.frames import load_frame_data, supervised_batch

    manifest = make_tone_corpus(tmp_path / "corpus")
    data = load_frame_data(read_manifest(manifest, ("train",)), FeatureCache(tmp_path / "cache"), progress=False)
    mean, std = np.zeros((31, 513), np.float32), np.ones((31, 513), np.float32)
    a = supervised_batch(data, mean, std, 4, 1.0, seed=3)(2, 5)
    b = supervised_batch(data, mean, std, 4, 1.0, seed=3)(2, 5)
    c = supervised_batch(data, mean, std, 4, 1.0, seed=3)(2, 6)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (4, 31, 513, 1) and a[1].shape == (4, 31, 442)


@pytest.mark.heavy
def test_train_teacher_writes_a_bundle_the_cli_loads(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    result = run_teacher("--train", manifest, "--run-dir", run, "--steps-per-epoch", 2, "--max-epochs", 2,
                         "--cache-dir", tmp_path / "cache", "--output", tmp_path / "teacher.npz", *TINY_ARGS)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert 0.0 <= float(rows[-1]["OA"]) <= 1.0
    bundle = read_bundle(tmp_path / "teacher.npz")
    assert bundle.model_args == TINY_MODEL and bundle.config["training"]["role"] == "teacher"
    from vocal_melody.cli import extract

    out = run_in_process(extract.main, "-p", tmp_path / "corpus/val", "-w", tmp_path / "teacher.npz",
                         "-o", tmp_path / "out", "-q")
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "out").iterdir())) == 2


@pytest.mark.heavy
def test_train_teacher_trains_on_several_manifests_together(tmp_path):
    first = make_tone_corpus(tmp_path / "first", n_train=3, n_val=1)
    second = make_tone_corpus(tmp_path / "second", n_train=2, n_val=2, seconds=2.0)
    common = ["--steps-per-epoch", 1, "--max-epochs", 1, "--cache-dir", tmp_path / "cache", *TINY_ARGS]
    both = run_teacher("--train", first, second, "--run-dir", tmp_path / "both", *common)
    assert both.returncode == 0, both.stderr
    training = read_bundle(tmp_path / "both" / "last.npz").config["training"]
    assert training["train"] == f"{first} {second}" and training["val_tracks"] == 3  # both val splits
    assert training["train_minutes"] == pytest.approx((3 * 1.0 + 2 * 2.0) / 60, abs=0.01)
    chosen = run_teacher("--train", first, second, "--val", second, "--run-dir", tmp_path / "chosen", *common)
    assert chosen.returncode == 0, chosen.stderr
    assert read_bundle(tmp_path / "chosen" / "last.npz").config["training"]["val_tracks"] == 2


@pytest.mark.heavy
def test_kill_and_resume_continues_without_redoing_epochs(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    args = ["--train", manifest, "--run-dir", run, "--steps-per-epoch", 3, "--max-epochs", 4,
            "--cache-dir", tmp_path / "cache", *TINY_ARGS]
    process = subprocess.Popen([sys.executable, str(ROOT / "train_teacher.py"), *map(str, args)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not (run / "log.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = list(csv.DictReader(open(run / "log.csv")))
    assert 1 <= len(done) < 4
    read_bundle(run / "last.npz")  # the checkpoint on disk is whole despite the kill
    again = run_teacher(*args)
    assert again.returncode != 0 and "--resume" in again.stderr  # never silently overwrites a run
    resumed = run_teacher(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert rows[: len(done)] == done  # finished epochs kept, not redone
    windows = [int(r["windows_seen"]) for r in rows]
    assert windows == [12, 24, 36, 48]


@pytest.mark.heavy
def test_init_starts_a_new_run_from_a_bundles_weights_and_normalisation(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus")
    common = ["--train", manifest, "--steps-per-epoch", 2, "--max-epochs", 1, "--cache-dir", tmp_path / "cache"]
    start = save_random_bundle(tmp_path / "first.npz", dict(TINY_MODEL), seed=3)
    first = read_bundle(start)
    result = run_teacher(*common, "--run-dir", tmp_path / "second", "--init", start,
                         "--lr", "1e-12", *TINY_ARGS)
    assert result.returncode == 0, result.stderr
    second = read_bundle(tmp_path / "second" / "last.npz")
    np.testing.assert_array_equal(second.mean, first.mean)
    assert second.config["state"]["epoch"] == 1 and second.config["state"]["windows_seen"] == 8  # fresh state
    conv = next(i for i, w in enumerate(first.weights) if w.ndim == 4)
    np.testing.assert_allclose(second.weights[conv], first.weights[conv], atol=1e-6)
    assert second.config["training"]["init"] == str(start)
    resumed = run_teacher("--train", manifest, "--steps-per-epoch", 2, "--max-epochs", 2, "--cache-dir",
                          tmp_path / "cache", "--run-dir", tmp_path / "second", "--resume", *TINY_ARGS)
    assert resumed.returncode == 0, resumed.stderr
    assert read_bundle(tmp_path / "second" / "last.npz").config["training"]["init"] == second.config["training"]["init"]
    other = run_teacher(*common, "--run-dir", tmp_path / "third", "--init", start,
                        "--filters", "4,4,4,8", "--lstm-units", "4", "-q")
    assert other.returncode == 1 and "different model" in other.stderr and "Traceback" not in other.stderr


@pytest.mark.heavy
def test_time_budget_stops_with_a_checkpoint(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    result = run_teacher("--train", manifest, "--run-dir", run, "--steps-per-epoch", 100000,
                         "--max-minutes", 0.1, "--cache-dir", tmp_path / "cache", *TINY_ARGS[:-1])
    assert result.returncode == 0, result.stderr
    assert "time budget" in result.stderr and "--resume" in result.stderr
    state = read_bundle(run / "last.npz").config["state"]
    assert state["epoch"] == 0 and state["step"] > 0


@pytest.mark.heavy
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus")
    result = run_teacher_script("--train", manifest, "--run-dir", tmp_path / "run", "--steps-per-epoch", 2,
                                "--max-epochs", 1, "--cpu-devices", 2, "--cache-dir", tmp_path / "cache",
                                *TINY_ARGS[:-1])
    assert result.returncode == 0, result.stderr
    assert "2 devices (MirroredStrategy)" in result.stderr
    assert (tmp_path / "run" / "best.npz").exists()


@pytest.mark.parametrize("args, message", [
    (["--sigma", "-1"], "sigma"),
    (["--train", "missing.csv"], "not found"),
])
def test_bad_training_input(tmp_path, args, message):
    manifest = make_tone_corpus(tmp_path / "corpus")
    base = {"--train": str(manifest), "--run-dir": str(tmp_path / "run")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    result = run_teacher(*[x for pair in base.items() for x in pair], *TINY_ARGS)
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr


def test_best_voicing_finds_the_threshold_that_recovers_quiet_voiced_frames():
    from vocal_melody.lab.training.voicing import best_voicing

    reference = np.full(100, 220.0)
    reference[80:] = 0.0
    probabilities = np.full((100, 442), 1e-6)
    probabilities[:, 0] = 0.55           # the model hesitates on every frame...
    probabilities[:80, 137] = 0.45       # ...but puts the rest on the right pitch (220 Hz is class 137)
    probabilities[80:, 0] = 0.95         # and is sure where there is no voice
    probabilities[80:, 137] = 0.05
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    decoding = best_voicing([probabilities], [reference])
    assert decoding["val_OA_argmax"] == pytest.approx(0.2)   # argmax: everything unvoiced
    assert decoding["val_OA_tuned"] == pytest.approx(1.0)
    assert 0.05 < decoding["voicing_threshold"] <= 0.45


def test_extraction_uses_the_bundles_tuned_threshold(tmp_path):
    from conftest import save_random_bundle

    from vocal_melody.bundle import read_bundle, save_bundle
    from vocal_melody.inference import extractor as cli

    path = save_random_bundle(tmp_path / "w.npz")
    bundle = read_bundle(path)
    save_bundle(path, bundle.weights, bundle.mean, bundle.std,
                dict(bundle.config, decoding={"voicing_threshold": 0.0}))
    extractor = cli.MelodyExtractor(path, engine="tf")
    assert extractor.tuned_voicing_threshold == 0.0
    audio = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    _, f0, _ = cli.extract_melody(audio, 8000, extractor=extractor)
    assert (f0 > 0).all()  # threshold 0: every frame voiced
    _, f0_argmax, _ = cli.extract_melody(audio, 8000, extractor=extractor, voicing_threshold="argmax")
    _, f0_none, _ = cli.extract_melody(audio, 8000, extractor=extractor, voicing_threshold=None)
    np.testing.assert_array_equal(f0_argmax, f0_none)


def test_epochs_are_ranked_by_the_oa_of_the_default_decoding():
    from vocal_melody.lab.training.voicing import selection_oa

    # a student whose argmax rule undersells it but whose tuned threshold wins
    assert selection_oa({"OA": 0.8736}, {"voicing_threshold": 0.4, "val_OA_tuned": 0.8989}) == pytest.approx(0.8989)
    assert selection_oa({"OA": 0.61}, {}) == pytest.approx(0.61)  # no tuning: the paper's argmax rule


def _tiny_trainer(tmp_path, **options):
    from vocal_melody.lab.training.loop import TrainConfig, Trainer

    config = TrainConfig(run_dir=tmp_path / "run", batch_size=4, learning_rate=1e-2, progress=False, **options)
    return Trainer(dict(TINY_MODEL), config, np.zeros((31, 513), np.float32), np.ones((31, 513), np.float32))


def _tone_batches(poisoned_steps):
    """Batches of a constant class; the inputs of ``poisoned_steps`` are NaN."""
    from vocal_melody.labels import target_distributions

    def make_batch(epoch, step):
        x = np.random.default_rng(step).normal(size=(4, 31, 513, 1)).astype(np.float32)
        if step in poisoned_steps:
            x[0, 3, 7, 0] = np.nan
        return x, target_distributions(np.full((4, 31), 200), 1.0), None

    return make_batch


def test_a_non_finite_step_is_undone_and_skipped(tmp_path):
    trainer = _tiny_trainer(tmp_path, steps_per_epoch=6, max_epochs=1)
    state = trainer.fit(_tone_batches({2}), validation=None)
    assert state.skipped_steps == 1 and state.step == 0 and state.epoch == 1
    assert all(np.isfinite(w).all() for w in trainer.model.get_weights())
    assert read_bundle(tmp_path / "run" / "last.npz").config["state"]["skipped_steps"] == 1
    assert np.isfinite(float(list(csv.DictReader(open(tmp_path / "run" / "log.csv")))[0]["train_loss"]))


@pytest.mark.heavy
def test_a_diverged_run_stops_with_a_clear_error_and_keeps_its_last_good_state(tmp_path):
    from vocal_melody.errors import MelodyError
    from vocal_melody.lab.training.loop import MAX_CONSECUTIVE_SKIPS

    trainer = _tiny_trainer(tmp_path, steps_per_epoch=100, max_epochs=1)
    with pytest.raises(MelodyError, match="diverged.*lower --lr"):
        trainer.fit(_tone_batches(set(range(3, 100))), validation=None)
    state = read_bundle(tmp_path / "run" / "last.npz")
    assert state.config["state"]["skipped_steps"] == MAX_CONSECUTIVE_SKIPS
    assert state.config["state"]["step"] == 3 + MAX_CONSECUTIVE_SKIPS
    assert all(np.isfinite(w).all() for w in state.weights)


def test_unvoiced_weight_scales_the_loss_of_no_voice_frames_only():
    from vocal_melody.lab.training.frames import frame_weights

    classes = np.array([[0, 5, 0], [7, 0, 9]])
    assert frame_weights(classes, np.ones(2)) is None  # the paper's plain loss: no weights at all
    weights = frame_weights(classes, np.array([1.0, 0.5]), unvoiced_weight=3.0)
    assert weights.tolist() == [[3.0, 1.0, 3.0], [0.5, 1.5, 0.5]]
    # a batch without a no-voice frame still gets weights, so every step sees the same inputs
    assert frame_weights(np.array([[4, 5]]), np.ones(1), unvoiced_weight=2.0).tolist() == [[1.0, 1.0]]


@pytest.mark.heavy
def test_freeze_backbone_trains_only_the_bilstm_and_the_output_layer(tmp_path):
    from vocal_melody.model import build_model

    manifest = make_tone_corpus(tmp_path / "corpus")
    first = save_random_bundle(tmp_path / "first.npz", dict(TINY_MODEL))
    start = read_bundle(first)
    result = run_teacher("--train", manifest, "--steps-per-epoch", 3, "--max-epochs", 1, "--cache-dir",
                         tmp_path / "cache", "--run-dir", tmp_path / "head", "--init", first,
                         "--freeze-backbone", "--lr", "1e-2", *TINY_ARGS)
    assert result.returncode == 0, result.stderr
    tuned = read_bundle(tmp_path / "head" / "last.npz")
    paths = [v.path for v in build_model(**start.model_args).weights]
    assert len(paths) == len(start.weights) == len(tuned.weights)
    for path, before, after in zip(paths, start.weights, tuned.weights):
        if path.startswith("block"):  # convolutions and batch statistics (moving mean and variance too)
            np.testing.assert_array_equal(after, before, err_msg=path)
        else:
            assert not np.allclose(after, before), path
    assert {p.split("/")[0] for p in paths if not p.startswith("block")} == {"bilstm", "pitch"}
    assert tuned.config["training"]["freeze_backbone"] is True
    # resuming without the flag would train the blocks halfway through the run
    before = (tmp_path / "head" / "last.npz").read_bytes()
    unfrozen = run_teacher("--train", manifest, "--steps-per-epoch", 3, "--max-epochs", 2, "--cache-dir",
                           tmp_path / "cache", "--run-dir", tmp_path / "head", "--resume", *TINY_ARGS)
    assert unfrozen.returncode == 1 and "Traceback" not in unfrozen.stderr
    assert "trained with --freeze-backbone" in unfrozen.stderr
    assert (tmp_path / "head" / "last.npz").read_bytes() == before
    # nor with another validation mean: its best score so far would be compared with a mean of another kind
    regrouped = run_teacher("--train", manifest, "--steps-per-epoch", 3, "--max-epochs", 2, "--cache-dir",
                            tmp_path / "cache", "--run-dir", tmp_path / "head", "--resume", "--freeze-backbone",
                            "--val-mean", "groups", *TINY_ARGS)
    assert regrouped.returncode == 1 and "validated with --val-mean tracks" in regrouped.stderr
    assert regrouped.stderr.count("\n") == 1 and (tmp_path / "head" / "last.npz").read_bytes() == before


def test_freeze_backbone_needs_a_trained_model_to_keep(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus")
    result = run_teacher("--train", manifest, "--run-dir", tmp_path / "run", "--freeze-backbone", *TINY_ARGS)
    assert result.returncode == 1 and "--init" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_validation_activations_match_the_eager_model_on_a_ragged_last_batch():
    from vocal_melody import features
    from vocal_melody.model import build_model
    from vocal_melody.lab.training.voicing import predict_activations

    model = build_model(**TINY_MODEL)
    rng = np.random.default_rng(0)
    spec = rng.standard_normal((40 * features.WINDOW_FRAMES + 7, model.input_shape[2])).astype(np.float32)
    mean, std = np.float32(0.5), np.float32(2.0)
    windows = features.normalize(features.make_windows(spec), mean, std)[..., None]
    eager = np.asarray(model(windows, training=False)).reshape(-1, 442)[:len(spec)]
    activations = predict_activations(model, spec, mean, std, batch_size=32)
    assert activations.shape == (len(spec), 442)
    np.testing.assert_allclose(activations, eager, atol=1e-5)
