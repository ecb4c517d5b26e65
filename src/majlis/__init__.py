"""majlis: searchable, speaker-attributed, time-aligned transcripts of panels and podcasts.

    import majlis
    t = majlis.transcribe("talk.m4a", speakers="voices/")                      # a Transcript
    t.write("out/", formats=["srt", "vtt"])                                    # the files written
    hits = majlis.Index("index/").search('"exact phrase"', speaker="Tolibov")  # Hits, best first

Names are imported when first used, so `import majlis` loads no engine (torch, whisper) and no index library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it
_LAZY = {
    "transcribe": "api",
    "Index": "search",
    "Transcript": "types",
    "Segment": "types",
    "Word": "types",
    "Turn": "types",
    "Hit": "types",
    "read_transcript": "files",
    "ExportOptions": "export",
    "write_transcript": "export",
    "Options": "pipeline",
    "MajlisError": "errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .api import transcribe
    from .errors import MajlisError
    from .files import read_transcript
    from .search import Index
    from .types import Hit, Segment, Transcript, Turn, Word
    from .export import ExportOptions, write_transcript
    from .pipeline import Options


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'majlis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
