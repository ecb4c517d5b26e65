"""A collection of recordings, as batch mode sees it: which files (folders, globs, manifests), what each
episode is called (stable ids), and the content keys that decide what must be redone."""

from __future__ import annotations

import csv
import glob
import hashlib
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

from ..audio import is_audio_path
from ..errors import UsageError
from ..files import digest

log = logging.getLogger("majlis")

MANIFEST_SUFFIXES = (".txt", ".csv")
_GLOB_CHARS = re.compile(r"[*?\[]")


# inputs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    source: str  # absolute path as the user named it (symlinks kept)
    relpath: str  # posix path relative to the common root of the inputs
    episode: str | None = None  # chosen in a manifest, else assigned by assign_episodes
    metadata: Mapping[str, str] = field(default_factory=dict)


def _walk(folder: Path, exclude: Path | None) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        # Hidden folders (.majlis state, .git, ...) and our own output folder are never inputs.
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and (exclude is None or os.path.realpath(here / d) != str(exclude))
        )
        for name in sorted(filenames):
            p = here / name
            if not name.startswith(".") and is_audio_path(p):
                yield p


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    static = []
    for part in parts:
        if _GLOB_CHARS.search(part):
            break
        static.append(part)
    return Path(*static) if static else Path(".")


_EPISODE_OK = re.compile(r"^[\w][\w.-]*$")


def _read_manifest(path: Path) -> list[tuple[Path, str | None, dict[str, str]]]:
    base = path.parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: manifest cannot be read ({e})") from None
    entries: list[tuple[Path, str | None, dict[str, str]]] = []
    if path.suffix.lower() == ".txt":
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                entries.append((base / Path(line).expanduser(), None, {}))
    else:
        try:
            rows = list(csv.reader(text.splitlines()))
        except csv.Error as e:
            raise UsageError(f"{path}: not a CSV manifest ({e})") from None
        header = [h.strip().lower() for h in rows[0]] if rows else []
        if "path" not in header:
            raise UsageError(f"{path}: a CSV manifest needs a 'path' column (found: {', '.join(header) or 'nothing'})")
        for lineno, row in enumerate(rows[1:], 2):
            cells = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header) if h}
            if not any(cells.values()):
                continue
            if not cells["path"]:
                raise UsageError(f"{path}:{lineno}: empty path")
            episode = cells.pop("episode", "") or None
            if episode is not None and not _EPISODE_OK.match(episode):
                raise UsageError(f"{path}:{lineno}: episode {episode!r} must be letters, digits, '.', '_' or '-'")
            metadata = {k: v for k, v in cells.items() if k != "path" and v}
            entries.append((base / Path(cells["path"]).expanduser(), episode, metadata))
    if not entries:
        raise UsageError(f"{path}: manifest lists no files")
    return entries


def discover(inputs: Sequence[str | os.PathLike], *, exclude: str | os.PathLike | None = None) -> list[Job]:
    """Folders (recursed, audio/video by extension), globs, single files and manifests (.txt, .csv) -> jobs.

    Missing files named in a manifest stay in as jobs: they fail on their own, the rest still run.
    """
    excluded = Path(os.path.realpath(exclude)) if exclude is not None else None
    found: list[tuple[Path, str | None, dict[str, str]]] = []
    roots: list[str] = []
    for raw in inputs:
        text = os.fspath(raw)
        p = Path(text).expanduser()
        if p.is_dir():
            roots.append(os.path.abspath(p))
            found += [(f, None, {}) for f in _walk(p, excluded)]
        elif p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
            roots.append(os.path.abspath(p.parent))
            found += _read_manifest(p)
        elif p.exists():
            roots.append(os.path.abspath(p.parent))
            found.append((p, None, {}))
        elif _GLOB_CHARS.search(text):
            roots.append(os.path.abspath(_glob_root(text)))
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            n = len(found)
            for m in matches:
                if m.is_dir():
                    found += [(f, None, {}) for f in _walk(m, excluded)]
                elif is_audio_path(m):
                    found.append((m, None, {}))
            if len(found) == n:
                log.warning(f"{text}: matches no audio or video files")
        else:
            raise UsageError(f"{text}: no such file, folder or manifest")
    if not found:
        raise UsageError(f"no audio or video files found in {', '.join(os.fspath(i) for i in inputs)}")
    root = os.path.commonpath(roots)
    jobs: list[Job] = []
    seen: set[str] = set()
    explicit: set[str] = set()
    for path, episode, metadata in found:
        source = os.path.abspath(path)
        real = os.path.realpath(source)
        if real in seen:  # the same recording named twice (folder and glob, two manifests): once is enough
            continue
        seen.add(real)
        if episode is not None:
            if episode.casefold() in explicit:
                raise UsageError(f"episode {episode!r} is given to two files in the manifest")
            explicit.add(episode.casefold())
        rel = PurePosixPath(*Path(os.path.relpath(source, root)).parts).as_posix()
        jobs.append(Job(source, rel, episode, metadata))
    return jobs


# episode ids ------------------------------------------------------------------------------------------


def episode_slug(relpath: str) -> str:
    """`2019/Interview with Amin.mp3` -> `2019-Interview-with-Amin`: the relative path, made a file name."""
    parts = [p for p in PurePosixPath(relpath).parts if p not in ("..", ".", "/")]
    if not parts:
        return "episode"
    parts[-1] = PurePosixPath(parts[-1]).stem
    s = unicodedata.normalize("NFC", "-".join(parts))
    s = re.sub(r"[^\w.-]+", "-", s)
    s = re.sub(r"-{2,}", "-", s).strip("-.")
    return s or "episode"


def _suffixed(base: str, relpath: str, taken: set[str]) -> str:
    h = hashlib.sha1(relpath.encode("utf-8")).hexdigest()
    for n in range(6, 41):
        candidate = f"{base}-{h[:n]}"
        if candidate.casefold() not in taken:
            return candidate
    raise AssertionError("sha1 prefixes exhausted")  # pragma: no cover


def assign_episodes(jobs: Sequence[Job], known: Mapping[str, tuple[str, str]]) -> list[Job]:
    """Give every job a unique id that never changes once given.

    `known` is the ledger's episode -> (source, relpath). Order of precedence: a manifest's episode column; the
    id this source already has; the slug of its relative path; that slug plus a short hash of the relative path
    when the slug is taken. Taken means: by a job of this run, or in the ledger by a different recording that
    still exists (an archive that moved keeps its ids). Adding files later never renames existing episodes,
    and case-only differences count as collisions (case-insensitive file systems).
    """
    by_source: dict[str, str] = {}
    for ep, (source, _) in sorted(known.items()):
        by_source.setdefault(source, ep)
    known_cf = {ep.casefold(): (source, rel) for ep, (source, rel) in known.items()}
    taken: set[str] = {j.episode.casefold() for j in jobs if j.episode}
    assigned: dict[int, str] = {i: j.episode for i, j in enumerate(jobs) if j.episode}
    for i, j in enumerate(jobs):
        if i not in assigned and j.source in by_source and by_source[j.source].casefold() not in taken:
            assigned[i] = by_source[j.source]
            taken.add(assigned[i].casefold())
    for i in sorted((i for i in range(len(jobs)) if i not in assigned), key=lambda i: jobs[i].relpath):
        j = jobs[i]
        base = episode_slug(j.relpath)
        owner = known_cf.get(base.casefold())
        free = base.casefold() not in taken and (
            owner is None or owner[0] == j.source or (owner[1] == j.relpath and not os.path.exists(owner[0]))
        )
        assigned[i] = base if free else _suffixed(base, j.relpath, taken | set(known_cf))
        taken.add(assigned[i].casefold())
    return [replace(j, episode=assigned[i]) for i, j in enumerate(jobs)]


# keys -------------------------------------------------------------------------------------------------


def options_fingerprint(options: Any) -> str:
    """What in Options can change a transcript (not where models live, nor tokens or devices)."""
    return digest(
        "options/1", options.asr, options.model, options.language, options.task, options.diarizer, options.pipeline,
        options.num_speakers, options.min_speakers, options.max_speakers, sorted(dict(options.names).items()),
    )
