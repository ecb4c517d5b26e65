"""Every error a user can cause. The CLI turns each into one line and its exit code."""

from __future__ import annotations

from typing import Callable, Sequence


class MajlisError(Exception):
    """Base of all errors majlis reports to users (never with a traceback).

    A message speaks of the library's arguments, each written {name} and listed in `arguments`: str() calls
    each by its name ("workers 0: needs at least 1"), worded() as its caller calls it (the CLI: its flag,
    "--workers 0: ...")."""

    exit_code = 1

    def __init__(self, message: str = "", *, arguments: Sequence[str] = ()):
        self.template, self.arguments = message, tuple(arguments)
        super().__init__(self.worded(lambda name: name))

    def worded(self, name_of: Callable[[str], str]) -> str:
        text = self.template
        for name in self.arguments:
            text = text.replace("{" + name + "}", name_of(name))
        return text


class UsageError(MajlisError):
    """Bad arguments or options."""

    exit_code = 2


class AudioError(MajlisError):
    """A recording that cannot be read: missing, empty, not audio, truncated, no audio stream."""

    exit_code = 2


class OutputError(MajlisError):
    """A place results go to cannot take them: read-only, full, gone, not a folder."""

    exit_code = 2

    def __init__(self, message: str = "", *, arguments: Sequence[str] = (), disk_full: bool = False):
        super().__init__(message, arguments=arguments)
        self.disk_full = disk_full  # no space or over quota: nothing else will fit either until space is freed


class ModelError(MajlisError):
    """An engine or its weights cannot be loaded."""

    exit_code = 2
    replaceable = False  # True: "auto" may try the next engine instead (WeightsUnusable)


class WeightsUnusable(ModelError):
    """Weights that "auto" found by itself (a cache, a bundled model) are missing or do not load: it may try
    the next engine instead. A model the user named never raises this."""

    replaceable = True


class ExtraMissing(ModelError):
    """An engine whose packages come with one of majlis's extras (pip install 'majlis[EXTRA]'), not installed."""

    def __init__(self, what: str, extra: str, error: ImportError):
        missing = getattr(error, "name", None) or str(error)
        super().__init__(f"{what} is not installed (no module {missing!r}): pip install 'majlis[{extra}]'")


def import_extra(module: str, what: str, extra: str):
    """`module`, imported; or ExtraMissing naming the extra that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExtraMissing(what, extra, e) from None


class EngineCrashed(MajlisError):
    """The child process running an engine stopped without an answer (killed, out of memory)."""


class TranscriptError(MajlisError):
    """A transcript file that is missing or does not follow the majlis.transcript/1 schema."""

    exit_code = 2


class QueryError(MajlisError):
    """A malformed search query."""

    exit_code = 2


class SearchTooSlow(QueryError):
    """A search that ran past its time budget (it is stopped, not left running)."""


class IndexBusy(MajlisError):
    """Another process holds the index writer lock."""

    exit_code = 3


class IndexMissing(MajlisError):
    """No index at the given location."""

    exit_code = 2


class VoiceError(MajlisError):
    """The voice library cannot do what was asked: an unknown name, a speaker not in the episode, a voice too
    short to learn, a library folder that is not one."""

    exit_code = 2
