"""What lets searches run side by side and stop in time: a small pool of searchers (whoosh readers are not
safe to share between threads mid-read), a deadline every search checks as it goes, and cyclic garbage
collection held off while any search runs."""

from __future__ import annotations

import gc
import threading
import time
from contextlib import contextmanager

from whoosh.collectors import WrappingCollector

from ..errors import SearchTooSlow

# Searchers one Index keeps for concurrent searches (the web app's threads): a slow search holds one while
# the other serves the rest. Not more: searches are CPU work under one GIL, and with 4 the threads taking
# turns cost more than they gained (bench/web.py: p50 67-71 ms against 57-64 ms with 2; BENCHMARKS.md, 5).
SEARCHERS = 2


class Deadline:
    """Called as a search goes (per posting block, per phrase candidate): SearchTooSlow once past its time."""

    __slots__ = ("seconds", "at")

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def __call__(self) -> None:
        if self.at is not None and time.monotonic() > self.at:
            self.fail()

    def fail(self):
        raise SearchTooSlow(f"search stopped after {self.seconds:g} s: narrow it (fewer OR words, a longer "
                            f"prefix before *, a shorter phrase)")


class Budgeted(WrappingCollector):
    """Whoosh's own search, checking the deadline at every matched document (whoosh's TimeLimitCollector
    would start a timer thread per search, or use SIGALRM, which only the main thread may)."""

    def __init__(self, child, deadline: Deadline):
        super().__init__(child)
        self.deadline = deadline

    def matches(self):
        deadline = self.deadline
        for sub_docnum in self.child.matches():
            deadline()
            yield sub_docnum

    def collect_matches(self):
        collect = self.child.collect
        for sub_docnum in self.matches():
            collect(sub_docnum)


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_on = False


class no_gc:
    """Cyclic collection off while any search runs. A search allocates many short-lived objects and no
    reference cycles, and each cyclic collection they set off walks the whole heap (readers, length tables,
    the caller's own data): at 1,000 h that was a third of a phrase search's time (BENCHMARKS.md,
    section 3). It runs after the last concurrent search instead."""

    def __enter__(self):
        global _gc_holders, _gc_was_on
        with _gc_lock:
            if _gc_holders == 0:
                _gc_was_on = gc.isenabled()
                gc.disable()
            _gc_holders += 1

    def __exit__(self, *exc):
        global _gc_holders
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_on:
                gc.enable()


class SearcherPool:
    """Up to SEARCHERS searchers of one index, each lent to one thread at a time, always on the latest
    commit. Not Searcher.refresh(): it reuses the readers of unchanged segment files and so misses deletions
    committed into them (a re-indexed episode would show twice)."""

    def __init__(self, index):
        self.index = index  # new_searcher() and generation() (IndexMissing once the files are gone)
        self._lock = threading.Condition()
        self._idle: list = []  # searchers not in use, of any generation
        self._open = 0  # searchers in existence (idle or in use)

    @contextmanager
    def searcher(self):
        searcher = self._acquire()
        try:
            yield searcher
        finally:
            with self._lock:
                self._idle.append(searcher)
                self._lock.notify()

    def _acquire(self):
        latest = self.index.generation()
        with self._lock:
            while True:
                for stale in [s for s in self._idle if s.reader().generation() != latest]:
                    self._idle.remove(stale)
                    stale.close()
                    self._open -= 1
                if self._idle:
                    return self._idle.pop()
                if self._open < SEARCHERS:
                    self._open += 1
                    break
                self._lock.wait()
        try:
            return self._open_searcher()
        except BaseException:
            with self._lock:
                self._open -= 1
                self._lock.notify()
            raise

    def _open_searcher(self, tries: int = 5):
        # A writer in another process deletes the previous commit's TOC once its own is written: a TOC
        # listed a moment ago may be gone when opened. The next try finds the newer one.
        for attempt in range(tries):
            try:
                return self.index.new_searcher()
            except FileNotFoundError:
                self.index.generation()  # IndexMissing if the whole index went away
                if attempt == tries - 1:
                    raise

    def close(self) -> None:
        with self._lock:
            for searcher in self._idle:
                searcher.close()
            self._open -= len(self._idle)
            self._idle.clear()
