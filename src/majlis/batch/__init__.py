"""Batch mode: a whole collection in, one transcript per recording out, resumable after any crash.

run.py: run_batch and batch_status, the parent's decisions and records; drive.py: the loop that keeps an
executor busy; worker.py: what a worker process does with one file, and the local executor; dask.py: the
executor on a Dask cluster; ledger.py: the SQLite ledger; collection.py: the inputs and stable episode ids."""

from __future__ import annotations

from .run import BatchStatus, BatchSummary, Failure, batch_status, run_batch
from .worker import BatchEvent, BatchHook, Executor, LocalExecutor

__all__ = [
    "BatchEvent", "BatchHook", "BatchStatus", "BatchSummary", "Executor", "Failure", "LocalExecutor",
    "batch_status", "run_batch",
]
