"""Batch mode on a Dask cluster (`majlis batch --executor dask`): the same stages, ledger and resume guarantees
as the local executor, with the per-file work done by `dask.distributed` workers.

- Each worker holds one `worker.Worker` in a WorkerPlugin, so engines load once per worker process (on
  its first file) and stay warm; Dask re-runs the plugin's setup on workers that join or restart.
- Workers report stage events on a Dask event topic and return a FileResult; this process, the client, stays
  the only writer of the ledger and the index (run_batch's `_Run`), exactly as with the local executor.
- A worker that dies (kill -9, out of memory) loses its file to the scheduler, which runs it elsewhere; a
  file whose workers die `allowed_failures + 1` times comes back as KilledWorker and is recorded failed.
- Inputs and the output folder reach workers as paths: they must be on a filesystem every worker mounts at
  the same place. A token file written here and looked for by each worker proves it before any file runs.

Only imported for `--executor dask`: distributed is not loaded otherwise.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable, Sequence

from distributed.diagnostics.plugin import WorkerPlugin

from ..errors import UsageError
from ..files import digest
from . import worker as worker_side
from .ledger import STATE_DIR
from .worker import BatchEvent, FileResult, Settings, Worker, _ForwardLog

log = logging.getLogger("majlis")

ALLOWED_FAILURES = 1  # a file may lose one worker and is tried again; the second death makes it a poison file
SHARED_WAIT = 90.0  # seconds a worker looks for the client's token file (NFS caches attributes up to 60 s)
CONNECT_TIMEOUT = "20s"  # to a running scheduler; Dask keeps retrying a refused connection until then
SHARED_HINT = "the output folder and the inputs must be on a filesystem every worker mounts at the same path"


class EnginesPlugin(WorkerPlugin):
    """Lives in each Dask worker: the majlis Worker (engines loaded on its first file) and its event channel."""

    def __init__(self, settings: Settings, topic: str, token: str):
        self.settings, self.topic, self.token = settings, topic, token

    def setup(self, worker) -> None:
        self.lock = threading.Lock()  # a worker started with several threads still runs one file at a time
        self.address = worker.address
        self.shared: bool | None = None  # sees the client's token file: checked on the first file

        def emit(e: BatchEvent) -> None:
            # Tagged with the run: a killed client's files still running elsewhere report under the same topic.
            # Pickled: events hold tuples and floats exactly as the local executor delivers them.
            worker.log_event(self.topic, [self.token, pickle.dumps(e)])

        self.majlis = Worker(self.settings, emit)
        self._log = _ForwardLog(emit)
        logging.getLogger("majlis").addHandler(self._log)

    def teardown(self, worker) -> None:
        # No engine close here: a file may still be running; the engines go with the last reference.
        logging.getLogger("majlis").removeHandler(self._log)
        self.majlis = None

    def sees_shared_folder(self) -> bool:
        """Whether this worker sees the client's token file; NFS may show a new file only after its attribute
        cache expires (up to a minute), so an absent one is looked for again for a while."""
        if self.shared is None:
            token = Path(self.settings.out_dir) / STATE_DIR / self.token
            deadline = time.monotonic() + SHARED_WAIT
            while not token.exists() and time.monotonic() < deadline:
                time.sleep(1.0)
            self.shared = token.exists()
        return self.shared


def run_on_worker(plugin_name: str, fn: Callable[..., FileResult], task) -> FileResult:
    """The Dask task: `fn` (worker.process_file) with this worker's warm majlis Worker in place."""
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(plugin_name)
    if plugin is None or plugin.majlis is None:
        return FileResult(task.episode, False, "load", fatal=f"Dask worker {worker.address} has no majlis "
                          "plugin (its setup failed: see the worker's log)")
    with plugin.lock:
        if not plugin.sees_shared_folder():
            return FileResult(task.episode, False, "load", fatal=f"Dask worker {worker.address} does not see "
                              f"{plugin.settings.out_dir}/{STATE_DIR}: {SHARED_HINT}")
        worker_side._WORKER, worker_side._WORKER_ERROR = plugin.majlis, ""
        return fn(task)


class _Pending:
    """A submitted file: a Dask future whose worker deaths and lost scheduler become FileResults."""

    __slots__ = ("future", "episode", "allowed_failures")

    def __init__(self, future, episode: str, allowed_failures: int | None):
        self.future, self.episode, self.allowed_failures = future, episode, allowed_failures

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> FileResult:
        from concurrent.futures import CancelledError

        from distributed.scheduler import KilledWorker

        try:
            return self.future.result()
        except KilledWorker:
            times = f"{self.allowed_failures + 1} times" if self.allowed_failures is not None else "repeatedly"
            return FileResult(self.episode, False, "worker", f"the Dask worker processing this file died {times} "
                              "(crashed, was killed or ran out of memory)")
        except CancelledError as e:  # the scheduler went away: no file can finish, the rerun resumes
            reason = getattr(e, "reason", "") or " ".join(str(e).split())
            return FileResult(self.episode, False, "worker", fatal=f"the Dask cluster dropped the run ({reason}); "
                              "run the same command again to resume")


class DaskExecutor:
    """worker.Executor on dask.distributed: a running cluster (`scheduler`) or a LocalCluster of
    `workers` single-threaded processes."""

    def __init__(self, settings: Settings, on_event: Callable[[BatchEvent], None], *, workers: int = 1,
                 scheduler: str | None = None, dashboard: str = "127.0.0.1:8787"):
        import dask
        from distributed import Client, LocalCluster

        self.on_event = on_event
        self._events: deque = deque()  # filled on the client's event loop thread, drained on this one
        self._wake = threading.Event()
        self._cluster = self.client = None
        self._token_path: Path | None = None
        self._token = ""
        # Dask logs lost connections and dead workers with tracebacks; majlis reports those itself, in one line.
        # Dask's logging config gives some of its loggers levels of their own: each one is quieted.
        self._dask_levels = {name: logging.getLogger(name).level for name in
                             ["distributed", *logging.root.manager.loggerDict] if name.startswith("distributed")}
        for name in self._dask_levels:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        run = uuid.uuid4().hex[:12]
        # One name per output folder: a rerun after a killed client replaces the plugin it left on the workers,
        # and the scheduler keeps one topic's recent events per folder, not one per run.
        self.plugin_name = self.topic = "majlis-batch-" + digest(settings.out_dir)[:12]
        try:
            if scheduler:
                try:
                    self.client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
                except (OSError, TimeoutError, ValueError) as e:
                    raise UsageError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler ({e})") from None
            else:
                with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
                    self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                 dashboard_address=dashboard, silence_logs=logging.CRITICAL)
                self.client = Client(self._cluster, set_as_default=False)
            self.allowed_failures = self._allowed_failures()
            self.client.subscribe_topic(self.topic, self._receive)
            # A file only this run writes; each worker's plugin looks for it before taking any file. Those of
            # killed runs go: the output folder's lock says no other run is alive.
            for stale in (Path(settings.out_dir) / STATE_DIR).glob("dask-*"):
                stale.unlink(missing_ok=True)
            self._token = f"dask-{run}"
            self._token_path = Path(settings.out_dir) / STATE_DIR / self._token
            self._token_path.write_text(f"{os.getpid()}\n")
            self.client.register_plugin(EnginesPlugin(settings, self.topic, self._token), name=self.plugin_name)
            on_event(BatchEvent("cluster", info={
                "scheduler": self.client.scheduler.address, "local": self._cluster is not None,
                "dashboard": self.client.dashboard_link, "workers": len(self.client.nthreads()),
                "threads": self.capacity, "allowed_failures": self.allowed_failures,
            }))
        except BaseException:
            self.close(cancel=True)
            raise

    def _allowed_failures(self) -> int | None:
        """How many worker deaths the scheduler forgives a task (a running cluster has its own setting)."""
        if self._cluster is not None:
            return ALLOWED_FAILURES
        try:
            return int(self.client.run_on_scheduler(_scheduler_allowed_failures))
        except Exception:  # a scheduler that refuses remote functions: the value is only reported
            return None

    def _receive(self, event) -> None:
        token, data = event[1]
        if token == self._token:
            self._events.append(data)
            self._wake.set()

    def _drain(self) -> None:
        while self._events:
            self.on_event(pickle.loads(self._events.popleft()))

    @property
    def capacity(self) -> int:
        """Files to keep in flight: one per thread of the workers alive now (asked at every top-up).

        Not more: a file waiting behind another on a worker that dies counts that death against itself, and
        two such deaths would record an innocent file as a poison file.
        """
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> _Pending:
        task = args[0]
        future = self.client.submit(run_on_worker, self.plugin_name, fn, task, pure=False,
                                    key=f"majlis-{task.episode}-{uuid.uuid4().hex[:8]}")
        future.add_done_callback(lambda f: self._wake.set())
        return _Pending(future, task.episode, self.allowed_failures)

    def wait_any(self, futures: Sequence[_Pending], timeout: float) -> set[_Pending]:
        deadline = time.monotonic() + timeout
        while True:
            self._wake.clear()
            self._drain()
            done = {f for f in futures if f.done()}
            left = deadline - time.monotonic()
            if done or left <= 0:
                # The scheduler relays a worker's events before its result, on the same stream: all are here.
                self._drain()
                return done
            self._wake.wait(min(left, 0.5))

    def close(self, *, cancel: bool = False) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                # Closing the client releases its futures (cancel or not): the scheduler drops the files not
                # started; a LocalCluster's workers are stopped below, a running cluster's finish their file.
                if self._cluster is None and client.status == "running":
                    client.unregister_worker_plugin(self.plugin_name)  # frees the engines on a shared cluster
            except Exception as e:  # closing must not hide why the run stopped
                log.debug("closing the Dask client: %s", e)
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._token_path is not None:
            self._token_path.unlink(missing_ok=True)
        for name, level in self._dask_levels.items():
            logging.getLogger(name).setLevel(level)
        self._drain()


def _scheduler_allowed_failures(dask_scheduler) -> int:
    return dask_scheduler.allowed_failures
