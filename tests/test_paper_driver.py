import subprocess
import sys

from conftest import ROOT, make_tone_corpus


def test_paper_experiment_driver_runs_every_setup_and_prints_one_table(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus", n_train=2, n_val=1, seconds=0.6)
    (tmp_path / "corpus" / "manifest.csv").write_text(
        manifest.read_text() + "val_0b,test,val/val_0.wav,val/val_0.f0.txt\n")
    options = "--filters 4,4,4,4 --lstm-units 4 --steps-per-epoch 1 --max-epochs 1 --batch-size 4 -q"
    command = [sys.executable, str(ROOT / "scripts" / "paper_experiments.py"), "--labeled", str(manifest),
               "--unlabeled", str(tmp_path / "corpus" / "val"), "--out", str(tmp_path / "runs"),
               "--ns-iterations", "2", "--train-options", options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    table = result.stdout.splitlines()
    names = [line.split("|")[1].strip() for line in table[2:]]
    assert names == ["teacher (supervised)", "bts iteration 1", "nts iteration 1", "ns iteration 1",
                     "ns iteration 2"]
    csv_rows = (tmp_path / "runs" / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 6 and all(0 <= float(v) <= 1 for v in csv_rows[1].split(",")[1:])
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)  # everything done: no retraining
    assert again.returncode == 0 and "+ " not in again.stderr
