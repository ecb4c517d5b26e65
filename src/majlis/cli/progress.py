"""Turns the library's progress hook into rich progress bars on a terminal, and nothing elsewhere: one overall
bar with an ETA across the stages of a file, and a bar for each stage as it reports."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Mapping

from ..types import ProgressHook

# Each stage's share of a file's time, roughly (ASR and diarization run side by side; "name" is naming and
# alignment). Only the stages that will run count; the ETA comes from the overall rate, so shares need not be
# exact, only not stall the bar.
WEIGHTS = {"decode": 5.0, "asr": 50.0, "diarize": 35.0, "name": 10.0}
LABELS = {"name": "naming + alignment"}


def overall(done: Mapping[str, float], stages: Mapping[str, float]) -> float:
    """The file's fraction done, from each stage's fraction done and its weight."""
    total = sum(stages.values()) or 1.0
    return sum(w * min(1.0, max(0.0, done.get(s, 0.0))) for s, w in stages.items()) / total


@contextmanager
def progress_hook(label: str, *, enabled: bool | None = None,
                  stages: Mapping[str, float] = WEIGHTS) -> Iterator[ProgressHook | None]:
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
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        whole = bar.add_task(label, total=1000)
        tasks: dict[str, int] = {}
        done: dict[str, float] = {}

        def hook(stage: str, completed: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"  {LABELS.get(stage, stage)}", total=total or 1)
            bar.update(tasks[stage], completed=completed, total=total or 1)
            done[stage] = completed / (total or 1)
            bar.update(whole, completed=round(1000 * overall(done, stages)))

        yield hook


@contextmanager
def status(message: str, *, enabled: bool | None = None) -> Iterator[None]:
    """A spinner with `message` on a terminal while something silent runs (models loading); gone after."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
