"""Batch extraction on real Ray clusters started on this machine (127.0.0.1), against the local CLI."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import ROOT, harmonic_tone, save_random_bundle, write_wav

ray = pytest.importorskip("ray")
# one worker runs the local clusters (xdist --dist loadgroup); the lock holds where it does not
pytestmark = [pytest.mark.xdist_group("clusters"), pytest.mark.usefixtures("one_cluster_at_a_time")]
# Ray >= 2.59 turns token authentication on for clusters started here: every process gets the token
ENV = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=os.urandom(16).hex())
RAY = str(shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray")


def extract(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "melodyExtraction_NS.py"), "-w", WEIGHTS, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


WEIGHTS = None


def outputs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("pitch_*"))}


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    global WEIGHTS
    WEIGHTS = str(save_random_bundle(tmp_path_factory.mktemp("ray_w") / "tiny.npz"))
    folder = tmp_path_factory.mktemp("ray_in")
    for i, f0 in enumerate((196.0, 220.0, 262.0, 330.0, 392.0, 440.0)):
        write_wav(folder / f"tone{i}.wav", harmonic_tone(f0, 6.0, 16000), 16000)
    (folder / "broken.wav").write_text("not audio\n" * 50)
    return folder


@pytest.fixture(scope="module")
def local_outputs(songs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_local")
    result = extract("-p", songs, "-o", out)
    assert result.returncode == 1 and "wrote 6 of 7" in result.stderr
    return outputs(out)


@pytest.mark.slow  # the two-node test below checks the same bytes; this is the single-machine form
def test_ray_on_this_machine_writes_the_local_clis_bytes(songs, local_outputs, tmp_path):
    result = extract("-p", songs, "-o", tmp_path, "--ray")
    assert result.returncode == 1, result.stderr
    assert "error: " + str(songs / "broken.wav") + ": not a readable audio file" in result.stderr
    assert "wrote 6 of 7 melody files" in result.stderr and "1 failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert outputs(tmp_path) == local_outputs


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def two_node_cluster():
    port = _free_port()
    head = subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                           "--num-cpus=1", "--include-dashboard=false"], capture_output=True, text=True,
                          env=ENV, timeout=120)
    assert head.returncode == 0, head.stderr
    try:
        node = subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                               "--num-cpus=1"], capture_output=True, text=True, env=ENV, timeout=120)
        assert node.returncode == 0, node.stderr
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=ENV, timeout=120)


@pytest.mark.heavy
def test_two_nodes_and_a_killed_worker_lose_no_output(songs, local_outputs, tmp_path, two_node_cluster):
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "melodyExtraction_NS.py"), "-w", WEIGHTS, "-p", str(songs), "-o", str(out),
               "--ray", two_node_cluster, "-q"]
    batch = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while not list(out.glob("pitch_*")) and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.02)
    written_before = outputs(out)
    subprocess.run(["pkill", "-9", "-f", "ray::ExtractionWorker"], check=False)  # mid-batch, both workers
    _, err = batch.communicate(timeout=300)
    assert 0 < len(written_before) < 6, "the kill came too late to test anything"
    assert batch.returncode == 1 and "Traceback" not in err, err  # 1: the broken file
    finished = outputs(out)
    assert all(finished[name] == data for name, data in written_before.items())  # nothing lost or rewritten
    assert finished == local_outputs  # the restarted workers finished the batch, same bytes
    again = extract("-p", songs, "-o", out, "--ray", two_node_cluster, "--skip-existing")
    assert "skipped 6 existing" in again.stderr and outputs(out) == local_outputs


def test_without_ray_nothing_imports_it(songs, tmp_path):
    code = (f"import sys; sys.argv = ['x', '-p', {str(songs / 'tone0.wav')!r}, "
            f"'-o', {str(tmp_path)!r}, '-w', {WEIGHTS!r}, '-q']\nimport vocal_melody.cli.extract as m\n"
            "from vocal_melody.cli.common import run_cli\n"
            "try:\n    run_cli(m.main)\nexcept SystemExit:\n    pass\nprint('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=ENV)
    assert result.stdout.strip().endswith("False"), result.stdout + result.stderr


def test_an_unreachable_cluster_is_one_line(songs, tmp_path):
    result = extract("-p", songs / "tone0.wav", "-o", tmp_path, "--ray", f"127.0.0.1:{_free_port()}", timeout=200)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: --ray 127.0.0.1:") and "cannot join" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.heavy
def test_pseudo_labels_on_ray_fill_the_cache_the_local_run_would(tmp_path, two_node_cluster):
    from conftest import make_tone_corpus

    make_tone_corpus(tmp_path / "corpus", n_train=3, n_val=1)
    teacher = save_random_bundle(tmp_path / "teacher.npz")
    base = [sys.executable, str(ROOT / "train_student.py"), "--teacher", str(teacher), "--setup", "ns",
            "--unlabeled", str(tmp_path / "corpus" / "train"), "--prepare-only", "-q"]
    local = subprocess.run([*base, "--cache-dir", str(tmp_path / "local")], capture_output=True, text=True, env=ENV,
                           timeout=300)
    assert local.returncode == 0, local.stderr
    # on the started cluster: a Ray instance of the command's own once missed its 30-s start beside the other tests
    on_ray = subprocess.run([*base, "--cache-dir", str(tmp_path / "ray"), "--ray", two_node_cluster],
                            capture_output=True, text=True, env=ENV, timeout=300)
    assert on_ray.returncode == 0, on_ray.stderr

    def entries(folder):
        return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    expected = entries(tmp_path / "local")
    assert len([p for p in expected if p.parts[0] == "pseudo"]) == 3  # one teacher labelling per file
    assert entries(tmp_path / "ray") == expected  # same keys, same bytes
