"""Run an ASR engine in a child process of its own.

pocketsphinx holds the GIL for the whole of its search. In a thread beside the diarizer it stalls every line
of Python the diarizer runs: on the 39-minute panel, ASR alone took 432 s and the diarizer alone 64 s, but
the two side by side in threads took 508 s. In its own process the recogniser really runs beside the
diarizer, so the pipeline takes about as long as the slower of the two.

The samples travel through a file rather than a pipe or /dev/shm: containers often give /dev/shm only 64 MB,
and a 4-hour recording is 0.9 GB of float32. A decoded recording is already in a file (audio.decode), which
the child maps as it is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..audio import backing_file, scratch_file
from ..errors import EngineCrashed
from ..types import ProgressHook, WordsHook
from . import AsrEngineBase, AsrResult


def _portable(error: BaseException) -> BaseException:
    """The error itself when it survives pickling (all MajlisErrors do), else its type and message."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def serve() -> None:
    """The child's side: messages in on stdin, out on stdout (both pickled by multiprocessing's Connection)."""
    inbox, outbox = Connection(os.dup(0), writable=False), Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # a library that prints must not corrupt the message stream
    from . import get_asr

    try:
        engine, options = inbox.recv()
    except EOFError:  # the parent was stopped (Ctrl-C) before it could say which engine to load
        return
    try:
        asr = get_asr(engine, **options)
    except BaseException as e:
        outbox.send(("error", _portable(e)))
        return
    outbox.send(("ready", asr.name))

    def hook(stage: str, done: float, total: float) -> None:
        outbox.send(("progress", stage, done, total))

    while True:
        try:
            # Started with Ctrl-C ignored (see ChildProcessAsr): one while the engine loaded was the parent's,
            # which stops us. From here on it stops the recording in hand (below). Set inside the try, so
            # that one arriving right after it is caught.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            path = inbox.recv()
        except EOFError:
            return
        except KeyboardInterrupt:  # Ctrl-C at the terminal reaches us too; the parent decides whether to go on
            continue
        if path is None:
            return
        # Ctrl-C during a recording stops it (KeyboardInterrupt goes back as the answer): the parent's thread
        # waiting for us must not sit out the rest of a long file.
        try:
            # Mapped, not read: the pages are the parent's file in the page cache, not a second private copy.
            samples = np.memmap(path, dtype=np.float32, mode="r")
            result = asr.transcribe(samples, hook=hook)
            del samples
            outbox.send(("result", result))
        except BaseException as e:
            outbox.send(("error", _portable(e)))


class ChildProcessAsr(AsrEngineBase):
    """An `AsrEngine` whose engine lives in a spawned child process, loaded once and reused for every file."""

    holds_gil: ClassVar[bool] = False  # this process only waits for the child's answers

    def __init__(self, engine: str, **options: Any) -> None:
        # A fresh interpreter rather than multiprocessing's spawn, which would re-run the caller's __main__
        # (a script without a main guard would start itself again).
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        argv = [sys.executable, "-c", "from majlis.asr.child import serve; serve()"]
        if os.name == "posix":
            # Ctrl-C ignored until the engine has loaded (serve): one while the interpreter starts, imports its
            # libraries and loads the model printed a KeyboardInterrupt traceback from deep inside them beside
            # the parent's one-line message. Set by a shell before exec, since an ignored signal stays ignored
            # across it and Python then installs no handler: set from Python's first line, it left the
            # interpreter's own start-up (~20 ms) open.
            argv = ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._outbox = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._inbox = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdin.close()
        self._process.stdout.close()
        # Ctrl-C leaves the child to the parent (see serve): it must not outlive us, busy for minutes.
        weakref.finalize(self, _kill, self._process)
        self._lock = threading.Lock()
        self._name: str | None = None
        self._outbox.send((engine, options))

    @property
    def name(self) -> str:
        """The engine's own name, once the child has loaded it (raises the child's load error)."""
        with self._lock:
            if self._name is None:
                reply = self._receive()
                if reply[0] == "error":
                    self.close()
                    raise reply[1]
                self._name = reply[1]
            return self._name

    def _receive(self) -> tuple:
        try:
            return self._inbox.recv()
        except (EOFError, OSError):
            code = self._process.wait(timeout=5)
            raise EngineCrashed(
                f"the ASR process stopped unexpectedly (exit code {code}); "
                "out of memory, or killed"
            ) from None

    def transcribe(self, audio: np.ndarray, *, hook: ProgressHook | None = None,
                   on_words: WordsHook | None = None) -> AsrResult:
        self.name  # noqa: B018 - a child that failed to load says so before any work is sent
        # on_words is not called: the child's words come back with its result.
        # A decoded recording already lies in a file (audio.decode): the child maps that one. Arrays made in
        # memory are written to a file of our own first.
        path = backing_file(audio)
        own = path is None
        if own:
            samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
            fd, path = scratch_file()
        try:
            if own:
                with os.fdopen(fd, "wb") as f:
                    samples.tofile(f)
            with self._lock:
                self._outbox.send(path)
                reply: tuple = ()
                try:
                    while True:
                        reply = self._receive()
                        if reply[0] == "progress":
                            if hook:
                                hook(*reply[1:])
                        elif reply[0] == "result":
                            return reply[1]
                        else:
                            raise reply[1]
                except KeyboardInterrupt as interrupted:
                    if not reply or reply[-1] is not interrupted:  # not the child's answer: it is still at work
                        _kill(self._process)
                    raise
        finally:
            if own:
                os.unlink(path)

    def close(self) -> None:
        """Stop the child: at once when it is in the middle of a recording, else when it has finished."""
        if self._outbox.closed:
            return
        if self._lock.locked():
            _kill(self._process)
        try:
            self._outbox.send(None)
        except OSError:
            pass
        self._outbox.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _kill(self._process)
        self._inbox.close()
