"""Turns the library's progress hook into a rich progress bar on a terminal, and nothing elsewhere."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from ..types import ProgressHook


@contextmanager
def progress_hook(label: str, *, enabled: bool | None = None) -> Iterator[ProgressHook | None]:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def hook(stage: str, completed: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{label} {stage}", total=total or 1)
            bar.update(tasks[stage], completed=completed, total=total or 1)

        yield hook
