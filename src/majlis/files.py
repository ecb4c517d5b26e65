"""Whole-or-nothing file writes and transcript loading: the only way majlis puts results on disk."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import TranscriptError
from .types import Transcript


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` so that `path` is either its old self or the complete new content, even after a crash."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; results are ordinary files, so give them the mode open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def transcript_json(transcript: Transcript) -> str:
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=1) + "\n"


def read_transcript(path: str | os.PathLike) -> Transcript:
    """A transcript file, checked whole (validate.py) before it becomes a Transcript: any fault is one
    TranscriptError naming the file, the JSON path and the rule."""
    from . import validate

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TranscriptError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TranscriptError(f"{p}: cannot be read ({e})") from None
    try:
        data = validate.parse(text)
        validate.check(data)
        return Transcript.from_dict(data)
    except TranscriptError as e:
        raise TranscriptError(f"{p}: {e}") from None
