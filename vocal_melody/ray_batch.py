"""Batch extraction on a Ray cluster: one model per worker, files streamed through the workers.

``melodyExtraction_NS.py -p ... --ray [ADDRESS]`` (``vocal-melody``) hands its list of jobs (input, output, picture) to
:func:`extract_on_ray`. Each worker is a Ray actor that loads the model once and runs the very
function the local batch runs (:func:`vocal_melody.batch.process_file`), so outputs are the same bytes; it writes them
atomically itself, so the output folder must be one that every node sees. A bad file is one line,
as in the local batch. A worker that dies (a lost node, a killed process) is restarted by Ray and
its file is tried again; a file that kills its worker three times is reported as failed and the
batch goes on. Nothing here imports Ray until a batch asks for it.
The Ray pseudo-labelling of the trainers uses the same scheduler (:mod:`vocal_melody.lab.training.ray_labels`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Callable, Iterator

from vocal_melody.batch import FileOptions, Job, failure_line, process_file
from vocal_melody.errors import MelodyError
from vocal_melody.inference.extractor import MelodyExtractor

PACKAGE_PARENT = Path(__file__).resolve().parents[1]
"""Put on the workers' PYTHONPATH, so a checkout that is not installed runs on Ray too."""


TASKS_PER_WORKER = 2
"""Files queued per worker: one running, one waiting, so no worker idles between files."""


TASK_RETRIES = 2
"""Tries again after a worker died during a file; then the file is reported as failed."""


class ExtractionWorker:
    """A Ray actor holding one loaded model; ``process`` returns None or the file's error line."""

    def __init__(self, weights: str, engine: str, batch_size: int, options: FileOptions) -> None:
        self.extractor = MelodyExtractor(weights, batch_size=batch_size, engine=engine)
        self.options = options

    def process(self, path: str, target: str, picture: str | None) -> str | None:
        try:
            process_file(Path(path), Path(target), Path(picture) if picture else None, self.extractor,
                         self.options)
        except Exception as error:  # the batch goes on; the driver prints the line
            return failure_line(Path(path), error)
        return None


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``local``: start one on this machine's cores)."""
    try:
        import ray
    except ImportError:
        raise MelodyError("--ray needs Ray: pip install 'ray>=2.10'") from None
    if ray.is_initialized():
        return
    if address not in ("local", "auto"):
        _probe(address)  # Ray itself retries an absent head for minutes
    environment = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_PARENT),
                                                                            os.environ.get("PYTHONPATH")]))}}
    try:
        # "local" starts this machine's own instance; None would join the cluster last started here, or a stale one
        ray.init(address=address, runtime_env=environment,
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise MelodyError(f"--ray {address}: cannot join the Ray cluster ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else 'no message'})") from None


def _probe(address: str, timeout_s: float = 10.0) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise MelodyError(f"--ray {address}: expected HOST:PORT (e.g. 10.0.0.1:6379), auto or nothing")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise MelodyError(f"--ray {address}: cannot join the Ray cluster: nothing answers there "
                          f"({error.strerror or type(error).__name__})") from None


def through_workers(worker_class: type, init_args: tuple, items: list, call: Callable,
                    name: Callable) -> Iterator[tuple[object, str | None]]:
    """(item, None or its error line) for every item, in the order they finish, on one actor per cluster CPU.

    ``call(worker, item)`` submits one item (its result: None or an error line naming the file),
    ``name(item)`` names it in the line of an item whose worker died; each worker has ``TASKS_PER_WORKER``
    items queued, and Ray restarts a dead worker and retries its item (``TASK_RETRIES``) before it counts as failed.
    """
    import ray
    from ray.exceptions import RayError

    n_workers = max(1, min(int(ray.cluster_resources().get("CPU", 1)), len(items)))
    actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=TASK_RETRIES)(worker_class)
    workers = [actor.remote(*init_args) for _ in range(n_workers)]
    queue, pending = list(reversed(items)), {}

    def submit(worker) -> None:
        item = queue.pop()
        pending[call(worker, item)] = (item, worker)

    for worker in workers:
        for _ in range(TASKS_PER_WORKER):
            if queue:
                submit(worker)
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            item, worker = pending.pop(done[0])
            try:
                error = ray.get(done[0])
            except RayError as failure:  # its worker died on every try
                error = f"{name(item)}: the Ray worker died on every try ({type(failure).__name__})"
            if queue:
                submit(worker)
            yield item, error
    finally:
        for worker in workers:
            ray.kill(worker)


def extract_on_ray(jobs: list[Job], options: FileOptions, weights: str | os.PathLike,
                   engine: str, batch_size: int, address: str) -> Iterator[tuple[Path, str | None]]:
    """(input, None or its error line) for every job, in the order they finish."""
    if not jobs:
        return
    connect(address)

    def call(worker, job):
        path, target, picture = (str(Path(p).resolve()) if p else None for p in job)
        return worker.process.remote(path, target, picture)

    init = (str(Path(weights).resolve()), engine, batch_size, options)
    for (path, _, _), error in through_workers(ExtractionWorker, init, jobs, call, name=lambda job: job[0]):
        yield path, error
