"""The worker side of batch mode: the records that cross process boundaries, `process_file` (one recording
through every stage, each reused from a content-addressed cache file when its key matches), and the
executors that run it in this process or in a pool of processes.

Cache keys (files.digest of):
  asr        = sha256(file) + ASR engine name + model + language + task + decoding options set
  diarize    = sha256(file) + diarizer name + pyannote pipeline + speaker counts
  naming     = diarize key + speakers-folder content hash (or the voice library's id, version and content)
               + hand-given names
  transcript = asr key + naming key + episode + audio path + metadata + engine names
  exports    = transcript key + formats;   index = transcript key + index folder
So changing only --speakers redoes naming, exports and index, never ASR or diarization. Naming reads no
ASR output, so its key leaves the ASR key out: a new ASR model does not redo speaker naming.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from ..errors import AudioError, MajlisError
from ..files import DISK_FULL, digest, file_sha256
from ..stagecache import StageCache

log = logging.getLogger("majlis")


# records ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchEvent:
    """What batch mode reports; the CLI renders these (a progress display, or one log line each).

    kind "plan": info has files, todo, skipped, failed_earlier. kind "stage": status start|done|reused|failed.
    kind "progress": completed/amount inside a stage. kind "file": status done|failed|failed-earlier|indexed.
    kind "log": a worker process's warning (info: level, message); the parent logs it, once per run.
    """

    kind: str
    episode: str = ""
    stage: str = ""
    status: str = ""
    seconds: float = 0.0
    error: str = ""
    key: str = ""
    position: int = 0
    total: int = 0
    completed: float = 0.0
    amount: float = 0.0
    info: Mapping[str, Any] = field(default_factory=dict)


BatchHook = Callable[[BatchEvent], None]


def error_line(e: BaseException) -> str:
    """MajlisErrors are already one line for users; anything else keeps its type so it can be reported."""
    text = str(e) if isinstance(e, MajlisError) else f"{type(e).__name__}: {e}"
    line = " ".join(text.split())
    return line if len(line) <= 500 else line[:497] + "..."


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs besides the file; sent once to each worker process."""

    options: Any  # pipeline.Options
    out_dir: str
    formats: tuple[str, ...]
    speakers_hash: str
    force: bool = False
    exports: Any = None  # writers.ExportOptions; None: the defaults
    strict: bool = False  # a recording that decodes with errors fails instead of being transcribed, marked damaged


def damage_note(damage) -> str:
    """The ledger's line for a recording transcribed from what decoded (types.Damage), "" when it was clean."""
    if damage is None:
        return ""
    missing = f", {damage.missing:.1f} s missing" if damage.missing else ""
    return f"damaged: decoded with {damage.errors} error{'s' * (damage.errors != 1)}{missing} ({damage.first_error})"


def export_layout(exports) -> list:
    """What of the export layout (writers.ExportOptions) goes into cache keys: only what differs from the
    default, so keys made before these options existed stay valid."""
    from ..export import ExportOptions

    default = asdict(ExportOptions())
    layout = sorted((k, v) for k, v in asdict(exports or ExportOptions()).items() if v != default[k])
    return [layout] if layout else []


@dataclass(frozen=True)
class FileTask:
    episode: str
    source: str
    metadata: Mapping[str, str]
    done_keys: Mapping[str, str]  # the ledger's done stages: lets exports be reused
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class FileResult:
    episode: str
    ok: bool
    stage: str = ""
    error: str = ""
    fatal: str = ""  # the engines could not load: no file can succeed, the run stops
    sha256: str | None = None
    duration: float | None = None
    transcript_key: str | None = None
    outputs: tuple[str, ...] = ()
    damaged: str = ""  # the recording decoded with errors, concealed: what the ledger says of it
    disk_full: bool = False  # it failed because a disk is full: the run stops, to be run again once there is room


# worker side ------------------------------------------------------------------------------------------


class _StageFailed(Exception):
    def __init__(self, stage: str, message: str, disk_full: bool = False):
        super().__init__(message)
        self.stage, self.message, self.disk_full = stage, message, disk_full


def is_disk_full(e: BaseException) -> bool:
    """No space left (or over quota) where something was being written, whichever layer said it."""
    while e is not None:
        if getattr(e, "disk_full", False) or (isinstance(e, OSError) and e.errno in DISK_FULL):
            return True
        e = e.__cause__ or e.__context__
    return False


class Worker:
    """Processes files one after another with engines loaded once (lazily: a run with nothing to do loads none)."""

    def __init__(self, settings: Settings, emit: Callable[[BatchEvent], None]):
        self.settings = settings
        self.emit = emit
        self.out = Path(settings.out_dir)
        self._engines = None

    def engines(self):
        if self._engines is None:
            from ..pipeline import Engines

            engines = Engines.load(self.settings.options, side_by_side=False)  # stages run one by one here
            if self.settings.options.speakers_dir is not None:
                from ..speakers import enrollment

                # Unusable voice samples would fail every file the same way: fail the run once, up front.
                enrollment(Path(self.settings.options.speakers_dir))
            self._engines = engines
        return self._engines

    @contextmanager
    def _stage(self, episode: str, stage: str, key: str = "") -> Iterator[dict]:
        self.emit(BatchEvent("stage", episode, stage, "start"))
        t0 = time.perf_counter()
        info: dict = {}
        try:
            yield info
        except _StageFailed:
            raise
        except Exception as e:  # one bad file must never stop the run: record it and move on
            message = error_line(e)
            self.emit(BatchEvent("stage", episode, stage, "failed", time.perf_counter() - t0, message))
            raise _StageFailed(stage, message, is_disk_full(e)) from None
        self.emit(BatchEvent("stage", episode, stage, "done", time.perf_counter() - t0, key=info.pop("key", key),
                             info=info))

    def _hook(self, episode: str):
        last = [0.0]

        def hook(stage: str, completed: float, total: float) -> None:
            if stage in ("decode", "name"):  # run_stages' own ticks: here those stages are reported as stages
                return
            now = time.monotonic()
            if now - last[0] >= 0.5 or completed >= total:  # events cross a process boundary: keep them few
                last[0] = now
                self.emit(BatchEvent("progress", episode, stage, completed=completed, amount=total))

        return hook

    def process(self, task: FileTask) -> FileResult:
        from .. import pipeline
        from ..export import write_transcript

        s, o, ep = self.settings, self.settings.options, task.episode
        try:
            engines = self.engines()
        except Exception as e:
            return FileResult(ep, False, "load", fatal=error_line(e))
        cache = _ReportingCache(self, ep)
        try:
            staged = pipeline.run_stages(task.source, options=o, engines=engines, hook=self._hook(ep), cache=cache)
            keys = cache.keys
            transcript_key = digest("transcript/1", keys["asr"], keys["naming"], ep, task.source, dict(task.metadata),
                                    staged.engines)
            exports_key = digest("exports/1", transcript_key, list(s.formats), *export_layout(s.exports))
            outputs = task.outputs
            if (not s.force and task.done_keys.get("exports") == exports_key and outputs
                    and all((self.out / name).exists() for name in outputs)):
                self.emit(BatchEvent("stage", ep, "exports", "reused", key=exports_key))
            else:
                with self._stage(ep, "exports", exports_key) as info:
                    transcript = pipeline.assemble(staged, episode=ep, metadata=task.metadata)
                    written = write_transcript(transcript, self.out, list(s.formats), options=s.exports)
                    outputs = tuple(sorted(os.path.relpath(p, self.out) for p in written))
                    info["outputs"] = list(outputs)
        except _StageFailed as f:
            return FileResult(ep, False, f.stage, f.message, sha256=cache.sha, duration=cache.duration,
                              disk_full=f.disk_full)
        return FileResult(ep, True, sha256=cache.sha, duration=cache.duration, transcript_key=transcript_key,
                          outputs=outputs, damaged=damage_note(cache.damage))


class _ReportingCache(StageCache):
    """The stage cache as a batch worker uses it: every stage, decode included, reported as an event (start,
    done with its key, reused, failed); a failed stage fails the file, not the run."""

    def __init__(self, worker: Worker, episode: str):
        super().__init__(worker.out, force=worker.settings.force, speakers_hash=worker.settings.speakers_hash)
        self.worker, self.episode = worker, episode
        self.duration: float | None = None
        self.damage = None  # types.Damage when the recording decoded with errors

    def decode(self, path, compute):
        from ..audio import SAMPLE_RATE, damage_of

        with self.worker._stage(self.episode, "decode") as info:
            samples = compute()
            self.sha = file_sha256(path)
            self.duration = len(samples) / SAMPLE_RATE
            self.damage = damage_of(samples)
            if self.damage is not None and self.worker.settings.strict:
                raise AudioError(f"{path}: damaged ({self.damage.first_error}; --strict: not transcribed)")
            info.update(key=self.sha, sha256=self.sha, duration=self.duration)
        return samples

    def reused(self, stage: str, key: str) -> None:
        self.worker.emit(BatchEvent("stage", self.episode, stage, "reused", key=key))

    def computed(self, stage: str, key: str, compute):
        """Computed, written whole, and only then reported done."""
        with self.worker._stage(self.episode, stage, key):
            return compute()


_WORKER: Worker | None = None
_WORKER_ERROR: str = ""


class _ForwardLog(logging.Handler):
    """A worker's library warnings travel to the parent as events; the parent logs each distinct one once."""

    def __init__(self, emit: Callable[[BatchEvent], None]):
        super().__init__(logging.WARNING)
        self.forward = emit

    def emit(self, record: logging.LogRecord) -> None:
        self.forward(BatchEvent("log", info={"level": record.levelno, "message": record.getMessage()}))


def _die_with_parent() -> None:
    """A worker whose parent was killed (kill -9, OOM killer) exits within a second instead of finishing its
    queue unseen and racing the rerun; pool workers have no other way to learn of it."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="majlis-parent-watch", daemon=True).start()


def _init_worker(settings: Settings, channel) -> None:
    """Process-pool initializer: one Worker per process, its engines loaded once and reused for every file."""
    import signal

    global _WORKER, _WORKER_ERROR
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the workers
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _die_with_parent()
    logger = logging.getLogger("majlis")
    logger.handlers[:] = [_ForwardLog(channel.put)]
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    _WORKER = Worker(settings, channel.put)
    try:
        _WORKER.engines()
    except Exception as e:  # reported through process_file, not as an initializer traceback
        _WORKER_ERROR = error_line(e)


def process_file(task: FileTask) -> FileResult:
    if _WORKER_ERROR:
        return FileResult(task.episode, False, "load", fatal=_WORKER_ERROR)
    assert _WORKER is not None, "process_file runs in a worker set up by _init_worker"
    return _WORKER.process(task)


# executors --------------------------------------------------------------------------------------------


class Executor(Protocol):
    """Where file tasks run. LocalExecutor runs them in this process (1 worker) or in a process pool;
    batch.dask.DaskExecutor on a Dask cluster. The stages, the ledger and the decisions in run_batch
    are the same for all.

    An executor may also have a `capacity` attribute: the number of tasks to keep in flight (read again
    before each submission, so a cluster may grow); without it run_batch keeps twice the worker count.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...

    def wait_any(self, futures: Sequence[Future], timeout: float) -> set[Future]:
        """Deliver pending worker events, then return the futures that are done (waiting up to `timeout`)."""
        ...

    def close(self, *, cancel: bool = False) -> None: ...


class LocalExecutor:
    def __init__(self, settings: Settings, on_event: Callable[[BatchEvent], None], *, workers: int = 1,
                 max_tasks_per_child: int | None = None):
        self.workers = workers
        self.on_event = on_event
        if workers == 1:
            # In process: an engine crash (segfault, OOM kill) stops the run, which then resumes where it was.
            global _WORKER, _WORKER_ERROR
            _WORKER, _WORKER_ERROR = Worker(settings, on_event), ""
            self._pool = None
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: workers inherit no locks, no open ledger and no CUDA state from the parent.
        ctx = multiprocessing.get_context("spawn")
        self._channel = ctx.SimpleQueue()
        self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(settings, self._channel), max_tasks_per_child=max_tasks_per_child)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as e:
            future.set_exception(e)
        return future

    def _drain(self) -> None:
        while self._pool is not None and not self._channel.empty():
            self.on_event(self._channel.get())

    def wait_any(self, futures: Sequence[Future], timeout: float) -> set[Future]:
        if self._pool is None:
            return {f for f in futures if f.done()}
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            done, _ = futures_wait(futures, timeout=0.05, return_when=FIRST_COMPLETED)
            if done or time.monotonic() >= deadline:
                self._drain()  # a worker's events are sent before its result: all of them are here now
                return set(done)

    def close(self, *, cancel: bool = False) -> None:
        if self._pool is None:
            return
        processes = list(getattr(self._pool, "_processes", {}).values()) if cancel else []
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        for p in processes:  # Ctrl-C or a fatal error: do not let workers finish their current file
            if p.is_alive():
                p.terminate()
        self._drain()

