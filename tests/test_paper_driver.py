import csv
import subprocess
import sys

import pytest
from conftest import ROOT, make_tone_corpus, save_random_bundle

OPTIONS = "--steps-per-epoch 1 --max-epochs 1 --batch-size 4 -q"


def driver(*args):
    # scored by the tf engine: converting each model for OpenVINO (auto) costs more than these tiny runs
    command = [sys.executable, str(ROOT / "scripts" / "paper_experiments.py"), *map(str, args), "--engine", "tf"]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paper")
    manifest = make_tone_corpus(folder / "corpus", n_train=2, n_val=1, seconds=0.6)
    (folder / "corpus" / "manifest.csv").write_text(
        manifest.read_text() + "val_0b,test,val/val_0.wav,val/val_0.f0.txt\n")
    return folder, manifest, save_random_bundle(folder / "teacher.npz")


def table_models(stdout):
    return [line.split("|")[2].strip() for line in stdout.splitlines()[2:]]


@pytest.mark.heavy
def test_setups_from_a_given_teacher_one_table_per_track_csv_and_no_rework(corpus):
    folder, manifest, teacher = corpus
    args = ["setups", "--teacher", teacher, "--labeled", manifest, "--unlabeled", folder / "corpus" / "val",
            "--out", folder / "runs", "--sets", "test", "--train-options", OPTIONS]
    result = driver(*args)
    assert result.returncode == 0, result.stderr
    assert table_models(result.stdout) == ["teacher", "bts", "nts", "ns"]
    rows = list(csv.DictReader(open(folder / "runs" / "setups" / "tracks.csv")))
    assert {r["model"] for r in rows} == {"teacher", "bts", "nts", "ns"} and all(r["track"] == "val_0" for r in rows)
    assert all(0 <= float(r["OA"]) <= 1 for r in rows)
    assert (folder / "runs" / "setups" / "results.md").read_text() == result.stdout
    again = driver(*args)  # everything done: nothing retrained
    assert again.returncode == 0 and "+ " not in again.stderr and again.stdout == result.stdout


@pytest.mark.heavy
def test_a_budget_alone_still_gives_a_model_to_score(corpus):
    folder, manifest, _ = corpus
    result = driver("iterations", "--labeled", manifest, "--unlabeled", folder / "corpus" / "val", "--out",
                    folder / "budget", "--sets", "test", "--ns-iterations", "1", "--minutes-per-model", "0.05",
                    "--train-options", "--filters 4,4,4,4 --lstm-units 4 --batch-size 4 --steps-per-epoch 100000 -q")
    assert result.returncode == 0, result.stderr
    assert table_models(result.stdout) == ["teacher *", "ns1 *"]  # scored from last checkpoints
    assert (folder / "budget" / "iterations" / "oa.png").stat().st_size > 0


@pytest.mark.slow
def test_size_and_singing_experiments(corpus, tmp_path):
    folder, manifest, teacher = corpus
    common = ["--teacher", teacher, "--labeled", manifest, "--out", folder / "runs", "--sets", "test",
              "--train-options", OPTIONS]
    size = driver("size", *common, "--unlabeled", folder / "corpus" / "train", "--sizes", "50", "100")
    assert size.returncode == 0, size.stderr
    assert table_models(size.stdout) == ["teacher", "ns 50%", "ns 100%"]
    singing = driver("singing", *common, "--unlabeled", folder / "corpus" / "train",
                     "--instrumental", folder / "corpus" / "val", "--min-voiced", "0")
    assert singing.returncode == 0, singing.stderr
    assert table_models(singing.stdout) == ["teacher", "ns with singing", "ns without singing", "ns with both",
                                            "ns with both, filtered"]
    kept = list(csv.DictReader(open(folder / "runs" / "singing" / "filter.csv")))
    assert len(kept) == 3 and all(r["kept"] == "1" for r in kept)  # --min-voiced 0 keeps everything


@pytest.mark.parametrize("teacher, message", [("missing.npz", "no such teacher bundle"),
                                               ("empty.npz", "not a valid weights bundle"),
                                               ("text.npz", "not a valid weights bundle")])
def test_a_bad_teacher_is_one_line_before_any_run(teacher, message, corpus, tmp_path):
    _, manifest, _ = corpus
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("not weights")
    result = driver("setups", "--teacher", tmp_path / teacher, "--labeled", manifest, "--out", tmp_path / "runs")
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "runs").exists()
