"""`majlis batch` and `majlis batch-status`: whole collections, resumable, one bad file never stops the run."""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import click
from click.core import ParameterSource

from .transcribe import build_exports, build_options, engine_options, preflight


def _fmt_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _plan_line(info: dict) -> str:
    files, todo = info["files"], info["todo"]
    parts = []
    if info["skipped"]:
        parts.append(f"{info['skipped']} done earlier")
    if info["failed_earlier"]:
        parts.append(f"{info['failed_earlier']} failed earlier (unchanged; --retry-failed tries them again)")
    head = f"majlis: {files} file{'s' if files != 1 else ''}: "
    head += f"{todo} to process" if todo else "nothing to do"
    return head + (", " + ", ".join(parts) if parts else "")


def _cluster_line(info: dict) -> str:
    what = "a local Dask cluster" if info.get("local") else f"the Dask cluster at {info.get('scheduler')}"
    workers, threads = info.get("workers", 0), info.get("threads", 0)
    line = f"majlis: {what}: {workers} worker{'s' if workers != 1 else ''}"
    if threads != workers:
        line += f" ({threads} threads)"
    return line + f", dashboard {info.get('dashboard') or '(none)'}"


# (kind, status) -> what a plain log line says after the file's tag
_LINES = {
    ("stage", "done"): lambda e: f"{e.stage} done {e.seconds:.1f}s",
    ("stage", "reused"): lambda e: f"{e.stage} reused (cached)",
    ("file", "done"): lambda e: f"done ({_fmt_duration(e.seconds)} of audio){', ' + e.error if e.error else ''}",
    ("file", "indexed"): lambda e: "added to the index (transcribed earlier)",
    ("file", "failed"): lambda e: f"FAILED at {e.stage or '?'}: {e.error}",
    ("file", "failed-earlier"): lambda e: f"failed earlier at {e.stage or '?'}: {e.error}",
}


class PlainLog:
    """Not a terminal: one line per file and stage on stderr, e.g. `[3/20] 2019-interview asr done 12.4s`."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def __call__(self, e) -> None:
        tag = f"[{e.position}/{e.total}] {e.episode}"
        if e.kind == "plan":
            self._line(_plan_line(dict(e.info)))
        elif e.kind == "cluster":
            self._line(_cluster_line(dict(e.info)))
        elif (e.kind, e.status) in _LINES:
            self._line(f"{tag} {_LINES[e.kind, e.status](e)}")


class RichProgress:
    """On a terminal: files done/total with ETA, and a line per file in flight with its current stage."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.progress import TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False,
        )
        self.overall = None
        self.files: dict[str, int] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def _file_task(self, e) -> int:
        if e.episode not in self.files:
            self.files[e.episode] = self.progress.add_task(f"  [{e.position}/{e.total}] {e.episode}", total=1)
        return self.files[e.episode]

    def __call__(self, e) -> None:
        p = self.progress
        if e.kind == "plan":
            self.console.print(_plan_line(dict(e.info)))
            self.overall = p.add_task("files", total=max(1, e.info["todo"]))
        elif e.kind == "cluster":
            self.console.print(_cluster_line(dict(e.info)), highlight=False)
        elif e.kind in ("stage", "progress") and e.episode and self.overall is not None:
            task = self._file_task(e)
            amount = e.amount or 1.0
            completed = e.completed if e.kind == "progress" else (1.0 if e.status in ("done", "reused") else 0.0)
            p.update(task, description=f"  [{e.position}/{e.total}] {e.episode}: {e.stage}",
                     completed=completed, total=amount if e.kind == "progress" else 1)
        elif e.kind == "file":
            task = self.files.pop(e.episode, None)
            if task is not None:
                p.remove_task(task)
            if e.status == "done" and e.error:
                self.console.print(f"[yellow]done, {e.error}[/yellow] [{e.position}/{e.total}] {e.episode}",
                                   markup=True, highlight=False)
            if e.status == "failed":
                self.console.print(f"[red]FAILED[/red] [{e.position}/{e.total}] {e.episode} at {e.stage}: {e.error}",
                                   markup=True, highlight=False)
            elif e.status == "failed-earlier":
                self.console.print(f"failed earlier: {e.episode} at {e.stage}: {e.error}", highlight=False)
            if e.status in ("done", "failed") and self.overall is not None:
                p.advance(self.overall)


def print_summary(summary, *, title: str = "majlis batch") -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", caption_justify="left",
                  caption="RTF: wall time / audio time (below 1: faster than real time)")
    for name in ("files", "done", "skipped", "failed", "failed before", "audio", "wall", "RTF"):
        table.add_column(name, justify="right")
    rtf = summary.real_time_factor
    table.add_row(
        str(summary.files), str(summary.done), str(summary.skipped), str(summary.failed), str(summary.failed_earlier),
        f"{summary.audio_seconds / 3600:.3f} h", _fmt_duration(summary.wall_seconds),
        f"{rtf:.2f}" if rtf is not None else "-",
    )
    console.print(table)
    if summary.stopped:
        click.echo(f"stopped before the other files: a disk is full ({summary.stopped}). Free some space and run "
                   "the same command again: what finished is kept and the rest is done then.")
    if summary.failures:  # plain echo: a long path must stay on one line, copy-pasteable
        click.echo(f"{len(summary.failures)} failed:")
        for f in summary.failures:
            where = "" if f.source in f.error else f"{f.source}: "
            click.echo(f"  {f.episode} ({f.stage or '?'}): {where}{f.error}")


@click.command("batch")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for <episode>.<ext> outputs, the ledger and the stage caches (.majlis/).")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes, each loading the models once.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: this machine's processes. dask: a Dask cluster (--scheduler), else a local one.")
@click.option("--scheduler", envvar="MAJLIS_DASK_SCHEDULER", metavar="tcp://HOST:PORT",
              help="With --executor dask: the running Dask scheduler to use [env: MAJLIS_DASK_SCHEDULER]; "
              "without it a LocalCluster of --workers processes.")
@click.option("--retry-failed", is_flag=True, help="Retry only the files that failed before.")
@click.option("--force", is_flag=True, help="Redo every stage of every file, ignoring the ledger and caches (and overwriting transcripts "
                   "corrected in `majlis serve --edit`).")
@click.option("--strict", is_flag=True,
              help="A recording that decodes with errors fails (see batch-status) instead of being transcribed from "
                   "what decoded and recorded as done, damaged.")
@engine_options
def batch_command(inputs: tuple[str, ...], out_dir: Path, workers: int, executor: str, scheduler: str | None,
                  retry_failed: bool, force: bool, strict: bool, **kw) -> None:
    """Transcribe a whole collection: folders (recursed), globs, or manifests (.txt one path per line;
    .csv with a path column and optional episode, title, date, ... columns).

    Resumable: run the same command again after a crash and only unfinished work is done. Exit status 0 when
    every file is done, 1 when any failed (see `majlis batch-status`), 2 for bad arguments.
    """
    from ..batch import run_batch
    from ..errors import UsageError
    from ..export import parse_formats

    ctx = click.get_current_context()
    given = {name: ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.ENVIRONMENT)
             for name in ("workers", "scheduler")}
    if executor != "dask":
        if given["scheduler"]:
            raise UsageError("--scheduler needs --executor dask")
        scheduler = None  # MAJLIS_DASK_SCHEDULER only matters with --executor dask
    elif scheduler and given["workers"]:
        raise UsageError("--workers sizes a local cluster; with --scheduler (or MAJLIS_DASK_SCHEDULER) "
                         "the cluster's own workers run the files")
    formats = parse_formats(kw["formats"])
    options = build_options(kw)
    preflight([], options, out_dir, kw["index_dir"])  # voice samples and output places, before any engine
    renderer = RichProgress() if sys.stderr.isatty() else PlainLog()
    with renderer:
        summary = run_batch(
            inputs, out_dir, options=options, formats=formats, exports=build_exports(kw), strict=strict,
            index_dir=kw["index_dir"],
            workers=workers,
            executor=executor, scheduler=scheduler, retry_failed=retry_failed, force=force, hook=renderer, argv=shlex.join(["majlis", *sys.argv[1:]]),
        )
    print_summary(summary)
    click.get_current_context().exit(summary.exit_code)


@click.command("batch-status")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The --out folder of a `majlis batch` run.")
def batch_status_command(out_dir: Path) -> None:
    """Show the last batch run's summary and every failed file with its error (exit 1 if any failed)."""
    from ..batch import batch_status

    status = batch_status(out_dir)
    if status.last_run is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status.started)) if status.started else "?"
        click.echo(f"last run: {when} ({status.last_run.status}): {status.argv}")
        print_summary(replace(status.last_run, failures=()), title="last run")
    damaged = f" ({len(status.damaged)} damaged)" if status.damaged else ""
    click.echo(f"ledger: {status.episodes} episodes: {status.done} done{damaged}, {status.failed} failed, "
               f"{status.pending} not done; {status.audio_seconds / 3600:.3f} h of audio transcribed")
    if status.damaged:
        click.echo(f"{len(status.damaged)} done, damaged (transcribed from what decoded; --strict fails them):")
        for d in status.damaged:
            click.echo(f"  {d.episode}: {d.source}: {d.error}")
    if status.failures:
        click.echo(f"{len(status.failures)} failed:")
        for f in status.failures:
            where = "" if f.source in f.error else f"{f.source}: "
            click.echo(f"  {f.episode} ({f.stage or '?'}): {where}{f.error}")
    click.get_current_context().exit(1 if status.failures else 0)


commands = [batch_command, batch_status_command]
