"""Whole-or-nothing file writes and transcript loading: the only way majlis puts results on disk."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

from .errors import OutputError, TranscriptError
from .types import Transcript


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` so that `path` is either its old self or the complete new content, even after a crash."""
    return atomic_write_set([(path, data)])[0]


def atomic_write_set(items: Sequence[tuple[str | os.PathLike, bytes]]) -> list[Path]:
    """Write several files as one: every temp file is written and synced first, and only then are they all
    renamed into place. A failure before that (a full disk) removes the temps and leaves every old file as
    it was; renames need no space. OSError becomes OutputError naming the folder and the cause."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in items:
            target = Path(path)
            staged.append((_staged(target, data), target))
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException as e:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(e, OSError):
            raise _output_error(e, Path(e.filename or staged[-1][1] if staged else items[0][0])) from None
        raise
    for folder in dict.fromkeys(target.parent for _, target in staged):
        try:  # make the renames themselves durable
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass
    return [target for _, target in staged]


def _staged(target: Path, data: bytes) -> str:
    """A synced temp file beside `target` holding `data` (removed again if writing it fails)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; results are ordinary files, so give them the mode open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return tmp


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # errnos that mean nothing more fits until space is freed


def _output_error(e: OSError, path: Path) -> OutputError:
    folder = path if path.is_dir() else path.parent
    hint = {errno.ENOSPC: ": free some space and run it again", errno.EDQUOT: ": over the disk quota",
            errno.EROFS: ": a read-only file system", errno.EACCES: ": permission denied"}.get(e.errno, "")
    return OutputError(f"{folder}: cannot write there ({e.strerror or e}{hint})",
                       disk_full=e.errno in DISK_FULL)


def check_writable(folder: str | os.PathLike, what: str, *, need: int = 0) -> None:
    """OutputError now, before any long work, unless `folder` (created if missing) takes a file and has
    `need` bytes free."""
    p = Path(folder)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".majlis-probe.", dir=p)
        os.close(fd)
        os.unlink(probe)
        free = shutil.disk_usage(p).free
    except OSError as e:
        raise OutputError(f"{what} {p}: not writable ({e.strerror or e})") from None
    if need and free < need:
        raise OutputError(f"{what} {p}: {free / 1e6:,.0f} MB free, {need / 1e6:,.0f} MB needed")


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


def json_output(episode: str, outputs: Sequence[str | os.PathLike]) -> str | os.PathLike | None:
    """The JSON transcript among an episode's written files: <episode>.json, else the first JSON."""
    preferred = next((o for o in outputs if Path(o).name == f"{episode}.json"), None)
    return preferred if preferred is not None else next((o for o in outputs if str(o).endswith(".json")), None)


def recording_candidates(audio: str, transcript: str | os.PathLike | None = None, *,
                         bases: Sequence[str | os.PathLike] = (), recorded: str | None = None) -> list[Path]:
    """Where the recording a transcript names (`audio`, as written in it) may be on this machine, in the order
    they are tried: an absolute path as written; a relative one against the transcript's folder, then each of
    `bases`, then the working directory; then a file of its name beside the transcript; last, `recorded` (where
    the indexer found it)."""
    written = Path(str(audio or ""))
    folder = Path(transcript).resolve().parent if transcript else None
    out: list[Path] = []
    if str(written) not in ("", "."):
        if written.is_absolute():
            out.append(written)
        else:
            out += [base / written for base in [*([folder] if folder else []), *map(Path, bases), Path.cwd()]]
        if folder is not None:
            out.append(folder / written.name)
    if recorded:
        out.append(Path(recorded))
    return out


def find_recording(audio: str, transcript: str | os.PathLike | None = None, *,
                   bases: Sequence[str | os.PathLike] = (), recorded: str | None = None) -> Path | None:
    """The first of recording_candidates that is a file, resolved; None when none is."""
    found = next((c for c in recording_candidates(audio, transcript, bases=bases, recorded=recorded)
                  if c.is_file()), None)
    return found.resolve() if found is not None else None


# content keys ------------------------------------------------------------------------------------------


def digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def folder_fingerprint(folder: str | os.PathLike | None) -> str:
    """Content hash of a folder of voice samples: renaming, adding or re-recording a sample changes it."""
    if folder is None:
        return ""
    root = Path(folder)
    entries = [
        (p.relative_to(root).as_posix(), file_sha256(p))
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return digest("speakers", entries)
