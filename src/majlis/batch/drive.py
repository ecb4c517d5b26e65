"""The parent's loop over an executor: a bounded number of files in flight, workers that die survived.

run.py decides what is to be done and records what was; this keeps the executor busy with it."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from ..errors import ModelError
from .collection import Job
from .worker import Executor, FileResult, FileTask, LocalExecutor, error_line, process_file

if TYPE_CHECKING:
    from .run import _Run


def drive(state: _Run, todo: list[tuple[Job, str]], workers: int, executor_factory, max_tasks_per_child) -> None:
    """Keep the executor busy with a bounded number of tasks; survive workers that die.

    When a worker process dies (segfault, out of memory), every task in flight fails with BrokenProcessPool,
    innocent ones included. Those are retried one at a time on a fresh pool: a task that kills its worker
    while running alone is the culprit and is recorded as failed; the others go on.
    """

    def make() -> Executor:
        if executor_factory is not None:
            return executor_factory(state.settings, state.on_event)
        return LocalExecutor(state.settings, state.on_event, workers=workers, max_tasks_per_child=max_tasks_per_child)

    def task(job: Job) -> FileTask:
        row = state.ledger.episode(job.episode)
        return FileTask(job.episode, job.source, dict(job.metadata), state.ledger.done_keys(job.episode),
                        row.outputs if row else ())

    default_limit = 1 if workers == 1 else 2 * workers  # bounded: memory stays flat however long the list
    pending = deque(todo)
    suspects: deque[tuple[Job, str]] = deque()
    in_flight: dict[Future, tuple[tuple[Job, str], int, bool]] = {}
    executor: Executor | None = None
    generation = fruitless_restarts = 0
    cancel = True

    def submit(queue: deque, alone: bool) -> bool:
        item = queue.popleft()
        try:
            future = executor.submit(process_file, task(item[0]))
        except BrokenProcessPool:  # the pool died before we noticed: the item waits for the next one
            queue.appendleft(item)
            return False
        in_flight[future] = (item, generation, alone)
        return True

    def top_up() -> bool:
        """Submit as much as the executor takes; True when its pool turned out to be broken."""
        if suspects:
            return not in_flight and not submit(suspects, True)
        limit = getattr(executor, "capacity", None) or default_limit
        broken = False
        while pending and len(in_flight) < limit and not broken:
            broken = not submit(pending, False)
        return broken

    try:
        while pending or suspects or in_flight:
            if executor is None:
                if fruitless_restarts > 3:
                    raise ModelError("worker processes keep dying before finishing any file; "
                                     "try --workers 1 to see the error")
                executor, generation = make(), generation + 1
            broken = top_up()
            finished: list[tuple[Job, str, FileResult]] = []
            for future in executor.wait_any(list(in_flight), 0.5):
                (job, plan), gen, alone = in_flight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = broken or gen == generation
                    if alone:
                        result = FileResult(job.episode, False, "worker", "the worker process died while "
                                            "processing this file (crashed or ran out of memory)")
                    else:
                        suspects.append((job, plan))
                        continue
                except Exception as e:  # a bug or an unpicklable result: this file fails, the run goes on
                    result = FileResult(job.episode, False, "worker", error_line(e))
                if result.fatal:
                    raise ModelError(result.fatal)
                finished.append((job, plan, result))
            if finished and not broken and getattr(executor, "capacity", None):
                # An executor that keeps no spare task in flight (Dask) gets its next files before this
                # process spends time indexing: its workers would otherwise wait for the index commits.
                broken = top_up()
            for job, plan, result in finished:
                fruitless_restarts = 0
                state.finish(job, plan, result)
            if state.stopped:  # a full disk: what is in flight finishes (or fails); nothing new starts
                pending.clear()
                suspects.clear()
            if broken:
                fruitless_restarts += 1
                executor.close(cancel=True)
                executor = None
        cancel = False
    finally:
        if executor is not None:
            executor.close(cancel=cancel)
