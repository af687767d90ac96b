"""Multi-worker training with tf.distribute.MultiWorkerMirroredStrategy: two real workers on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, make_tone_corpus

from vocal_melody.bundle import read_bundle

# one worker runs the local clusters (xdist --dist loadgroup); the lock holds where it does not
pytestmark = [pytest.mark.xdist_group("clusters"), pytest.mark.usefixtures("one_cluster_at_a_time")]

# plain SGD: Adam's first steps move every weight by about the learning rate whatever the gradient's
# size, which would hide a wrongly scaled or wrongly shared gradient
ARGS = ["--filters", "4,4,4,4", "--lstm-units", "4", "--batch-size", "8", "--steps-per-epoch", "3",
        "--max-epochs", "2", "--no-dropout", "--optimizer", "sgd", "--lr", "0.05", "--seed", "3", "-q"]


def _ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def teacher(manifest, run, cache, tf_config=None):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, str(ROOT / "train_teacher.py"), "--train", str(manifest),
                             "--run-dir", str(run), "--cache-dir", str(cache), *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.heavy
def test_two_workers_train_the_weights_of_one_worker_with_the_same_global_batch(tmp_path):
    manifest = make_tone_corpus(tmp_path / "corpus")
    single = teacher(manifest, tmp_path / "single", tmp_path / "cache")
    _, err = single.communicate(timeout=300)
    assert single.returncode == 0, err
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _ports(2)]}
    workers = [teacher(manifest, tmp_path / "multi", tmp_path / "cache",
                       {"cluster": cluster, "task": {"type": "worker", "index": index}}) for index in range(2)]
    errors = [worker.communicate(timeout=300)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], errors
    one, two = read_bundle(tmp_path / "single" / "last.npz"), read_bundle(tmp_path / "multi" / "last.npz")
    assert two.config["state"]["windows_seen"] == one.config["state"]["windows_seen"] == 2 * 3 * 8
    untrained = read_bundle(tmp_path / "single" / "best.npz")  # epoch 1's weights, for scale
    moved = max(float(np.abs(a - b).max()) for a, b in zip(one.weights, untrained.weights))
    assert moved > 0.1  # epoch 2 alone moved some weight by more than 0.1
    # float noise only (reductions in another order, batch statistics over two replicas: up to 7e-4 seen,
    # on near-zero BatchNorm shifts), far below what a wrongly scaled or wrongly shared gradient changes
    for a, b in zip(one.weights, two.weights):
        np.testing.assert_allclose(a, b, rtol=1e-2, atol=2e-3)
    assert one.config["state"]["epoch"] == two.config["state"]["epoch"] == 2


@pytest.mark.heavy
def test_the_time_budget_stops_every_worker_at_one_step_and_resume_goes_on(tmp_path):
    """A worker that stopped alone would leave the other waiting in a collective for ever."""
    import re

    manifest = make_tone_corpus(tmp_path / "corpus")
    budget = [a if a != "2" else "1" for a in ARGS]  # one long epoch, cut by the budget
    budget[budget.index("--steps-per-epoch") + 1] = "100000"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _ports(2)]}
    steps = []
    for extra in (["--max-minutes", "0.1"], ["--max-minutes", "0.1", "--resume"]):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
        workers = []
        for index in range(2):
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            workers.append(subprocess.Popen(
                [sys.executable, str(ROOT / "train_teacher.py"), "--train", str(manifest), "--run-dir",
                 str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), *budget[:-1], *extra],
                stderr=subprocess.PIPE, text=True, env=dict(env)))
        errors = [worker.communicate(timeout=300)[1] for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], errors
        stopped = [re.findall(r"time budget of .* reached at epoch 1, step (\d+)", err) for err in errors]
        assert stopped[0] and stopped[0] == stopped[1], errors  # the same step on both workers
        assert read_bundle(tmp_path / "run" / "last.npz").config["state"]["step"] == int(stopped[0][0])
        steps.append(int(stopped[0][0]))
    assert steps[1] > steps[0] > 0  # the resumed run went on from the checkpoint
