"""Batch mode: a whole collection in, one transcript per recording out, resumable after any crash.

`run_batch` finds the files (batch/collection.py), gives each a stable episode id, and decides per file: already
done with the same inputs (skip), done but not yet in this index (index only), failed before with the same
inputs (report, retry only with retry_failed), or to be processed. Those go to an executor whose workers run
batch/worker.py's process_file, where each stage is reused from its cache file when its key matches.

Only this process, the parent, writes the ledger (batch/ledger.py) and the index: workers report events and a
small result. The parent keeps no per-file state beyond a position number, so memory stays flat.
A file is marked done only after its outputs and its index entry are on disk; a kill -9 at any moment leaves
a ledger that at worst lags the files, and the same command again completes the run.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import MajlisError, ModelError, UsageError
from ..files import digest, json_output
from ..voices import naming_fingerprint
from .worker import (
    BatchEvent, BatchHook, Executor, FileResult, Settings, error_line, export_layout, is_disk_full,
)
from .collection import Job, assign_episodes, discover, options_fingerprint
from .drive import drive
from .ledger import STATE_DIR, Ledger, OutLock, RunRow

log = logging.getLogger("majlis")

@dataclass(frozen=True)
class Failure:
    episode: str
    source: str
    stage: str
    error: str


@dataclass(frozen=True)
class BatchSummary:
    files: int  # recordings in this run's inputs
    done: int  # processed successfully now
    skipped: int  # nothing to do: done earlier with the same inputs (or not selected by retry_failed)
    failed: int  # failed now
    failed_earlier: int  # failed in an earlier run, inputs unchanged, not retried
    not_done: int  # files of this run that are not done at its end
    audio_seconds: float  # audio processed now
    wall_seconds: float
    failures: tuple[Failure, ...] = ()
    status: str = "finished"  # finished | interrupted | running | aborted
    stopped: str = ""  # why the run stopped before trying every file (a full disk), "" when it did not

    @property
    def real_time_factor(self) -> float | None:
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else None

    @property
    def exit_code(self) -> int:
        return 0 if self.not_done == 0 else 1


class _Run:
    """One invocation: the ledger, the index and the counters, all owned by the parent process."""

    def __init__(self, ledger: Ledger, run: int, out: Path, settings: Settings, index_dir: Path | None,
                 positions: dict[str, int], hook: BatchHook):
        self.ledger, self.run, self.out, self.settings = ledger, run, out, settings
        self.index_dir, self.positions, self.hook = index_dir, positions, hook
        self.total = len(positions)
        self.done = self.failed = 0
        self.audio = 0.0
        self._index = None
        self._index_fresh = False
        self._logged: set[str] = set()
        self.stopped = ""  # set when a disk fills: no further file is started

    def emit(self, e: BatchEvent) -> None:
        self.hook(replace(e, position=self.positions.get(e.episode, 0), total=self.total))

    def on_event(self, e: BatchEvent) -> None:
        """Record a worker's stage event in the ledger (it arrives after the stage's output is written)."""
        led, ep, run = self.ledger, e.episode, self.run
        if e.kind == "log":
            message = str(e.info.get("message", ""))
            if message not in self._logged:  # every worker warns alike (e.g. engine fallbacks): say it once
                if len(self._logged) > 10000:  # bounded: warnings that name files are all distinct
                    self._logged.clear()
                self._logged.add(message)
                log.log(int(e.info.get("level", logging.WARNING)), "%s", message)
            return
        if e.kind == "stage":
            if e.status == "start":
                led.stage_started(ep, e.stage, run)
            elif e.status == "done":
                led.stage_finished(ep, e.stage, e.key, e.seconds, run)
                if e.stage == "decode":
                    led.set_episode(ep, sha256=e.info.get("sha256"), duration=e.info.get("duration"))
                elif e.stage == "exports":
                    led.set_episode(ep, outputs=e.info.get("outputs", ()))
            elif e.status == "reused":
                led.stage_reused(ep, e.stage, e.key, run)
            elif e.status == "failed":
                led.stage_failed(ep, e.stage, e.error, e.seconds, run)
        self.emit(e)

    def open_index(self):
        if self._index is None and self.index_dir is not None:
            from ..search import Index

            # A new (or deleted and recreated) index holds nothing, whatever the ledger remembers adding.
            self._index_fresh = not self.index_dir.is_dir() or not any(self.index_dir.iterdir())
            self._index = Index(self.index_dir, create=True)
        return self._index

    def _index_key(self, transcript_key: str) -> str:
        return digest("index/1", transcript_key, str(self.index_dir))

    def index_current(self, ep: str, transcript_key: str) -> bool:
        if self.index_dir is None:
            return True
        self.open_index()
        return not self._index_fresh and self.ledger.done_keys(ep).get("index") == self._index_key(transcript_key)

    def index_episode(self, ep: str, transcript_key: str, outputs: Sequence[str]) -> str | None:
        """Add the episode's transcript to the index unless it is there with this content; error line or None."""
        if self.index_dir is None:
            return None
        key = self._index_key(transcript_key)
        if not self.settings.force and self.index_current(ep, transcript_key):
            self.on_event(BatchEvent("stage", ep, "index", "reused", key=key))
            return None
        self.on_event(BatchEvent("stage", ep, "index", "start"))
        t0 = time.perf_counter()
        try:
            from ..pipeline import index_stage

            index_stage(self.open_index(), ep, [self.out / name for name in outputs])
        except Exception as e:
            message = error_line(e)
            self.on_event(BatchEvent("stage", ep, "index", "failed", time.perf_counter() - t0, message))
            if is_disk_full(e):
                self.stopped = message
            return message
        self.on_event(BatchEvent("stage", ep, "index", "done", time.perf_counter() - t0, key=key))
        return None

    def finish(self, job: Job, plan: str, r: FileResult) -> None:
        ep = job.episode
        error, stage = r.error, r.stage
        if r.ok:
            error = self.index_episode(ep, r.transcript_key or "", r.outputs)
            stage = "index" if error else ""
        fields = {"sha256": r.sha256, "duration": r.duration, "plan": plan}
        if r.ok and not error:
            self.ledger.set_episode(ep, status="done", error=r.damaged or None, failed_stage=None,
                                    transcript_key=r.transcript_key, outputs=r.outputs, **fields)
            self.done += 1
            self.audio += r.duration or 0.0
            self.emit(BatchEvent("file", ep, status="done", seconds=r.duration or 0.0, error=r.damaged))
        else:
            if r.disk_full:
                self.stopped = error
            if error == self.stopped:  # no plan: the next run tries it again, once there is room
                fields["plan"] = None
            self.ledger.set_episode(ep, status="failed", error=error, failed_stage=stage, **fields)
            self.failed += 1
            self.emit(BatchEvent("file", ep, stage, "failed", error=error or ""))
        self.ledger.update_run(self.run, done=self.done, failed=self.failed, audio_seconds=self.audio)


def _plan(job: Job, base: str) -> str:
    """What the file was last finished with: options, formats, id, metadata and the file's size and mtime."""
    try:
        st = os.stat(job.source)
        signature: Any = [st.st_size, st.st_mtime_ns]
    except OSError as e:
        signature = ["unreadable", e.errno]
    return digest("plan/1", base, job.episode, job.source, dict(job.metadata), signature)


def _sweep_temp_files(out: Path) -> None:
    """Remove the half-written temp files a killed run left (atomic writes never expose them as outputs)."""
    for folder in (out, *sorted((out / STATE_DIR / "cache").glob("*"))):
        for tmp in folder.glob(".*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass


def run_batch(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    options: Any = None,
    formats: Sequence[str] = ("json",),
    exports: Any = None,
    strict: bool = False,
    index_dir: str | os.PathLike | None = None,
    workers: int = 1,
    retry_failed: bool = False,
    force: bool = False,
    hook: BatchHook | None = None,
    argv: str = "",
    executor: str = "local",
    scheduler: str | None = None,
    executor_factory: Callable[[Settings, Callable[[BatchEvent], None]], Executor] | None = None,
    max_tasks_per_child: int | None = None,
) -> BatchSummary:
    """Transcribe every recording in `inputs` into `out_dir`, resuming whatever an earlier run left undone.

    `executor`: "local" (this process, or a pool of `workers` processes) or "dask" (the cluster whose scheduler
    is at `scheduler`, else a LocalCluster of `workers` processes; batch/dask.py). `exports`: the layout of
    the subtitle and podcast exports (export.ExportOptions; default: as `transcribe`'s). A recording that
    decodes with errors is transcribed from what decoded and recorded "done, damaged"; `strict`: it fails.
    """
    if retry_failed and force:
        raise UsageError("{retry_failed} and {force} contradict each other: choose one",
                         arguments=("retry_failed", "force"))
    if workers < 1:
        raise UsageError(f"{{workers}} {workers}: needs at least 1", arguments=("workers",))
    if executor not in ("local", "dask"):
        raise UsageError(f"{{executor}} {executor}: choose local or dask", arguments=("executor",))
    if scheduler and executor != "dask":
        raise UsageError("{scheduler} needs {executor} dask", arguments=("scheduler", "executor"))
    if executor == "dask" and executor_factory is None:
        from functools import partial

        from .dask import DaskExecutor  # distributed loads only here

        executor_factory = partial(DaskExecutor, workers=workers, scheduler=scheduler)
    if options is None:
        from ..pipeline import Options

        options = Options()
    out = Path(os.path.abspath(out_dir))
    if out.exists() and not out.is_dir():
        raise UsageError(f"{{out_dir}} {out}: exists and is not a folder", arguments=("out_dir",))
    index_path = Path(os.path.abspath(index_dir)) if index_dir is not None else None
    if options.speakers_dir is not None:
        from ..speakers import enrollment_clips

        enrollment_clips(Path(options.speakers_dir))  # a bad --speakers folder is a usage error, not N failures
    jobs = discover(inputs, exclude=out)
    formats = tuple(dict.fromkeys(["json", *formats]))
    settings = Settings(options, str(out), formats, naming_fingerprint(options), force, exports, strict)
    base = digest(options_fingerprint(options), settings.speakers_hash, list(formats), *export_layout(exports),
                  *(["strict"] if strict else []))
    hook = hook or (lambda e: None)
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    with OutLock(out), Ledger.for_out(out) as ledger:
        _sweep_temp_files(out)
        jobs = assign_episodes(jobs, ledger.episode_ids())
        ledger.register((j.episode, j.source, j.relpath, j.metadata) for j in jobs)
        run = ledger.start_run(argv, len(jobs))
        state = _Run(ledger, run, out, settings, index_path, {j.episode: i for i, j in enumerate(jobs, 1)}, hook)
        try:
            summary = _run(state, jobs, base, retry_failed, force, workers, executor_factory, max_tasks_per_child, t0)
        except BaseException as e:
            try:
                ledger.update_run(run, finished=time.time(), wall_seconds=time.monotonic() - t0,
                                  status="aborted" if isinstance(e, ModelError) else "interrupted")
            except MajlisError:  # the ledger's disk is full too: the error that stopped the run is the one to tell
                pass
            raise
        ledger.update_run(run, finished=time.time(), status="stopped: disk full" if summary.stopped else "finished",
                          skipped=summary.skipped,
                          failed_earlier=summary.failed_earlier, wall_seconds=summary.wall_seconds)
        return summary


def _run(state: _Run, jobs: list[Job], base: str, retry_failed: bool, force: bool, workers: int,
         executor_factory, max_tasks_per_child, t0: float) -> BatchSummary:
    ledger = state.ledger
    todo: list[tuple[Job, str]] = []
    skipped = failed_earlier = 0
    earlier: list[BatchEvent] = []
    if state.index_dir is not None:
        state.open_index()  # a bad --index fails now, before any work
    for job in jobs:
        row = ledger.episode(job.episode)
        assert row is not None
        plan = _plan(job, base)
        outputs_whole = bool(row.outputs) and all((state.out / o).exists() for o in row.outputs)
        if force or (retry_failed and row.status == "failed"):
            todo.append((job, plan))
        elif row.status == "done" and (retry_failed or (row.plan == plan and outputs_whole)):
            if outputs_whole and row.transcript_key and not state.index_current(job.episode, row.transcript_key):
                # Done before, but not in this index (a new --index, or the index folder was deleted).
                error = state.index_episode(job.episode, row.transcript_key, row.outputs)
                if error:
                    ledger.set_episode(job.episode, status="failed", error=error, failed_stage="index", plan=plan)
                    state.failed += 1
                    state.emit(BatchEvent("file", job.episode, "index", "failed", error=error))
                    continue
                state.emit(BatchEvent("file", job.episode, status="indexed"))
            skipped += 1
        elif row.status == "failed" and row.plan == plan:
            failed_earlier += 1
            earlier.append(BatchEvent("file", job.episode, row.failed_stage or "", "failed-earlier",
                                      error=row.error or ""))
        elif retry_failed:
            skipped += 1  # never attempted: that is a normal run's work, not a retry's
        else:
            todo.append((job, plan))
    if not force:  # a transcript corrected in `majlis serve --edit` is not overwritten unasked
        from ..edits import refuse_if_edited

        for job, _ in todo:
            row = ledger.episode(job.episode)
            written = json_output(job.episode, row.outputs or ()) if row is not None else None
            if written:
                refuse_if_edited(state.out / written, force)
    state.emit(BatchEvent("plan", info={"files": len(jobs), "todo": len(todo), "skipped": skipped,
                                        "failed_earlier": failed_earlier}))
    for event in earlier:
        state.emit(event)
    if todo:
        drive(state, todo, workers, executor_factory, max_tasks_per_child)
    failures = []
    not_done = 0
    for job in jobs:
        row = ledger.episode(job.episode)
        if row is not None and row.status != "done":
            not_done += 1
            if row.status == "failed":
                failures.append(Failure(job.episode, job.source, row.failed_stage or "", row.error or ""))
    return BatchSummary(len(jobs), state.done, skipped, state.failed, failed_earlier, not_done, state.audio,
                        time.monotonic() - t0, tuple(failures), stopped=state.stopped)


# status ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchStatus:
    last_run: BatchSummary | None
    argv: str
    started: float | None
    episodes: int
    done: int
    failed: int
    pending: int
    audio_seconds: float  # of every done episode
    failures: tuple[Failure, ...]
    damaged: tuple[Failure, ...] = ()  # done from what decoded: the decoder concealed errors


def _summary_of(r: RunRow, failures: tuple[Failure, ...]) -> BatchSummary:
    status = r.status
    not_done = max(0, r.files - r.done - r.skipped)
    return BatchSummary(r.files, r.done, r.skipped, r.failed, r.failed_earlier, not_done, r.audio_seconds or 0.0,
                        r.wall_seconds or 0.0, failures, status)


def batch_status(out_dir: str | os.PathLike) -> BatchStatus:
    """The ledger of `out_dir`, read-only: the last run's summary and every failure with its error."""
    with Ledger.for_out(out_dir, readonly=True) as ledger:
        rows = ledger.episodes()
        failures = tuple(Failure(r.episode, r.source, r.failed_stage or "", r.error or "")
                         for r in rows if r.status == "failed")
        last = ledger.last_run()
        if last is not None and last.status == "running":
            pid = OutLock.holder(out_dir)
            last = replace(last, status=f"running now (pid {pid})" if pid else "interrupted")
        return BatchStatus(
            _summary_of(last, failures) if last else None, last.argv if last else "", last.started if last else None,
            len(rows), sum(r.status == "done" for r in rows), len(failures),
            sum(r.status not in ("done", "failed") for r in rows),
            sum(r.duration or 0.0 for r in rows if r.status == "done"), failures,
            tuple(Failure(r.episode, r.source, "decode", r.error) for r in rows if r.status == "done" and r.error),
        )
