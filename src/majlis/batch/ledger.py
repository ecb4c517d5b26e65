"""The batch ledger: what was done to which file, with which inputs, and how it went.

One SQLite file in the output folder (WAL, synchronous=FULL), written by exactly one process, the batch
parent. Tables:

- episodes: one row per episode id: its source file, the path it had relative to the run's input root
  (so a moved archive keeps its ids), the run plan it last finished under, status pending|running|done|failed,
  the error, content hash, duration, the transcript key and the output files (relative to the output folder).
- stages: one row per (episode, stage) for decode, asr, diarize, naming, exports, index: the key of the inputs
  the stage last ran or was reused with, status running|done|failed, error, attempts (times it really ran),
  reused (times its cached output served instead), seconds of the last run, started/finished, run id.
- runs: one row per `majlis batch` invocation with its counts, audio seconds and wall time.

A stage is marked done only after its output is durably on disk (the caller writes first, then records), so
after a crash the ledger may lag the files but never runs ahead of them.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import OutputError, UsageError
from ..stagecache import STATE_DIR

LEDGER_NAME = "ledger.sqlite"
STAGES = ("decode", "asr", "diarize", "naming", "exports", "index")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS episodes(
    episode TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    relpath TEXT NOT NULL,
    plan TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    failed_stage TEXT,
    sha256 TEXT,
    duration REAL,
    transcript_key TEXT,
    outputs TEXT,
    metadata TEXT,
    updated REAL
);
CREATE INDEX IF NOT EXISTS episodes_source ON episodes(source);
CREATE TABLE IF NOT EXISTS stages(
    episode TEXT NOT NULL,
    stage TEXT NOT NULL,
    key TEXT,
    status TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    reused INTEGER NOT NULL DEFAULT 0,
    seconds REAL,
    started REAL,
    finished REAL,
    run INTEGER,
    PRIMARY KEY(episode, stage)
);
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL,
    finished REAL,
    argv TEXT,
    status TEXT,
    files INTEGER DEFAULT 0,
    done INTEGER DEFAULT 0,
    skipped INTEGER DEFAULT 0,
    failed INTEGER DEFAULT 0,
    failed_earlier INTEGER DEFAULT 0,
    audio_seconds REAL DEFAULT 0,
    wall_seconds REAL DEFAULT 0
);
"""


def state_dir(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / STATE_DIR


def ledger_path(out_dir: str | os.PathLike) -> Path:
    return state_dir(out_dir) / LEDGER_NAME


class OutLock:
    """Exclusive claim on an output folder, so two batch runs never write the same ledger and files.

    flock is released by the kernel when the holder dies, so a kill -9 never leaves a stale lock behind.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.path = state_dir(out_dir) / "lock"
        self._fd: int | None = None

    def __enter__(self) -> "OutLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise UsageError(
                f"{self.path.parent.parent}: another `majlis batch` is already writing to this folder{who}; "
                "wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    @staticmethod
    def holder(out_dir: str | os.PathLike) -> int | None:
        """The pid of the batch run writing to `out_dir` now, or None when none is."""
        path = state_dir(out_dir) / "lock"
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)  # also releases the shared lock if we got it
        return None


@dataclass(frozen=True)
class EpisodeRow:
    episode: str
    source: str
    relpath: str
    plan: str | None
    status: str
    error: str | None
    failed_stage: str | None
    sha256: str | None
    duration: float | None
    transcript_key: str | None
    outputs: tuple[str, ...]
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class StageRow:
    episode: str
    stage: str
    key: str | None
    status: str
    error: str | None
    attempts: int
    reused: int
    seconds: float | None
    finished: float | None
    run: int | None


@dataclass(frozen=True)
class RunRow:
    id: int
    started: float
    finished: float | None
    argv: str
    status: str
    files: int
    done: int
    skipped: int
    failed: int
    failed_earlier: int
    audio_seconds: float
    wall_seconds: float


def _episode(r: sqlite3.Row) -> EpisodeRow:
    return EpisodeRow(
        r["episode"], r["source"], r["relpath"], r["plan"], r["status"], r["error"], r["failed_stage"], r["sha256"],
        r["duration"], r["transcript_key"], tuple(json.loads(r["outputs"] or "[]")),
        json.loads(r["metadata"] or "{}"),
    )


class Ledger:
    def __init__(self, path: str | os.PathLike, *, readonly: bool = False):
        self.path = Path(path)
        try:
            self._open(readonly)
        except sqlite3.DatabaseError as e:
            raise UsageError(f"{self.path}: the batch ledger cannot be used ({e}); move it away to start a fresh "
                             "ledger (outputs and stage caches are kept and reused)") from None

    def _open(self, readonly: bool) -> None:
        if readonly:
            if not self.path.exists():
                raise UsageError(f"{self.path.parent.parent}: no batch ledger here (run `majlis batch` first)")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        for table in ("episodes", "stages", "runs"):  # sqlite opens lazily: find a damaged file now
            self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
        self._db.row_factory = sqlite3.Row

    @classmethod
    def for_out(cls, out_dir: str | os.PathLike, *, readonly: bool = False) -> "Ledger":
        return cls(ledger_path(out_dir), readonly=readonly)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            with self._db:  # one transaction per record: each is durable on its own
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(sql, params)
        except sqlite3.OperationalError as e:
            # SQLite rolled the record back: the ledger holds what it held before, and the run cannot go on.
            full = "full" in str(e) or "quota" in str(e)
            raise OutputError(f"{self.path}: cannot write the batch ledger ({e}"
                              f"{': free some space and run the same command again' if full else ''})",
                              disk_full=full) from None

    # episodes -----------------------------------------------------------------------------------------

    def episode(self, episode: str) -> EpisodeRow | None:
        r = self._db.execute("SELECT * FROM episodes WHERE episode=?", (episode,)).fetchone()
        return _episode(r) if r else None

    def episodes(self) -> list[EpisodeRow]:
        return [_episode(r) for r in self._db.execute("SELECT * FROM episodes ORDER BY episode")]

    def episode_ids(self) -> dict[str, tuple[str, str]]:
        """episode -> (source, relpath) for every episode ever recorded here."""
        return {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT episode, source, relpath FROM episodes")}

    def register(self, rows: Iterable[tuple[str, str, str, Mapping[str, str]]]) -> None:
        """Make sure every (episode, source, relpath, metadata) of this run has a row; keep existing state."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for episode, source, relpath, metadata in rows:
                self._db.execute(
                    "INSERT INTO episodes(episode, source, relpath, metadata, updated) VALUES(?,?,?,?,?) "
                    "ON CONFLICT(episode) DO UPDATE SET source=excluded.source, relpath=excluded.relpath, "
                    "metadata=excluded.metadata",
                    (episode, source, relpath, json.dumps(dict(metadata), sort_keys=True), now),
                )

    def set_episode(self, episode: str, **fields: Any) -> None:
        if "outputs" in fields:
            fields["outputs"] = json.dumps(list(fields["outputs"]))
        fields["updated"] = time.time()
        cols = ", ".join(f"{k}=?" for k in fields)
        self._write(f"UPDATE episodes SET {cols} WHERE episode=?", [*fields.values(), episode])

    # stages -------------------------------------------------------------------------------------------

    def stage(self, episode: str, stage: str) -> StageRow | None:
        r = self._db.execute(
            "SELECT episode, stage, key, status, error, attempts, reused, seconds, finished, run FROM stages "
            "WHERE episode=? AND stage=?",
            (episode, stage),
        ).fetchone()
        return StageRow(*r) if r else None

    def done_keys(self, episode: str) -> dict[str, str]:
        rows = self._db.execute("SELECT stage, key FROM stages WHERE episode=? AND status='done'", (episode,))
        return {r[0]: r[1] for r in rows}

    def stage_started(self, episode: str, stage: str, run: int) -> None:
        self._write(
            "INSERT INTO stages(episode, stage, status, attempts, started, run) VALUES(?,?,'running',1,?,?) "
            "ON CONFLICT(episode, stage) DO UPDATE SET status='running', error=NULL, attempts=attempts+1, "
            "started=excluded.started, run=excluded.run",
            (episode, stage, time.time(), run),
        )

    def stage_finished(self, episode: str, stage: str, key: str | None, seconds: float, run: int) -> None:
        self._write(
            "INSERT INTO stages(episode, stage, key, status, attempts, seconds, finished, run) "
            "VALUES(?,?,?,'done',1,?,?,?) ON CONFLICT(episode, stage) DO UPDATE SET key=excluded.key, "
            "status='done', error=NULL, seconds=excluded.seconds, finished=excluded.finished, run=excluded.run",
            (episode, stage, key, seconds, time.time(), run),
        )

    def stage_reused(self, episode: str, stage: str, key: str, run: int) -> None:
        self._write(
            "INSERT INTO stages(episode, stage, key, status, reused, run) VALUES(?,?,?,'done',1,?) "
            "ON CONFLICT(episode, stage) DO UPDATE SET key=excluded.key, status='done', error=NULL, "
            "reused=reused+1, run=excluded.run",
            (episode, stage, key, run),
        )

    def stage_failed(self, episode: str, stage: str, error: str, seconds: float, run: int) -> None:
        self._write(
            "INSERT INTO stages(episode, stage, status, error, attempts, seconds, finished, run) "
            "VALUES(?,?,'failed',?,1,?,?,?) ON CONFLICT(episode, stage) DO UPDATE SET status='failed', "
            "error=excluded.error, seconds=excluded.seconds, finished=excluded.finished, run=excluded.run",
            (episode, stage, error, seconds, time.time(), run),
        )

    # runs ---------------------------------------------------------------------------------------------

    def start_run(self, argv: str, files: int) -> int:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            # A run that never reached its end was killed: say so rather than leave it "running" forever.
            self._db.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
            cur = self._db.execute(
                "INSERT INTO runs(started, argv, status, files) VALUES(?,?,'running',?)", (time.time(), argv, files)
            )
            return int(cur.lastrowid)

    def update_run(self, run: int, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        self._write(f"UPDATE runs SET {cols} WHERE id=?", [*fields.values(), run])

    def last_run(self) -> RunRow | None:
        r = self._db.execute(
            "SELECT id, started, finished, argv, status, files, done, skipped, failed, failed_earlier, "
            "audio_seconds, wall_seconds FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return RunRow(*r) if r else None
