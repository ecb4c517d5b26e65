"""Rename speakers in a written transcript and in every export beside it, without running any model."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import UsageError
from ..files import atomic_write_bytes, atomic_write_text, read_transcript, transcript_json
from ..types import Segment, Transcript, Turn
from .writers import WRITERS, ExportOptions, relative_url


def parse_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """["SPEAKER_00=Tahir", ...] -> {"SPEAKER_00": "Tahir"}; names are trimmed, the first "=" separates."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise UsageError(f"{pair!r}: not OLD=NEW (example: SPEAKER_00='Muhammad Tahir')")
        if mapping.get(old, new) != new:
            raise UsageError(f"{old!r} is renamed twice: to {mapping[old]!r} and to {new!r}")
        mapping[old] = new
    if not mapping:
        raise UsageError("give at least one OLD=NEW pair")
    return mapping


def speakers_of(t: Transcript) -> list[str]:
    seen = dict.fromkeys([*t.speakers, *(s.speaker for s in t.segments), *(x.speaker for x in t.turns)])
    return list(seen)


def apply_mapping(t: Transcript, mapping: Mapping[str, str]) -> Transcript:
    """All renames at once (so A=B B=A swaps); renaming onto an existing name merges the two speakers."""
    known = speakers_of(t)
    unknown = [old for old in mapping if old not in known]
    if unknown:
        raise UsageError(
            f"no speaker {', '.join(map(repr, unknown))} in episode {t.episode!r}; its speakers are "
            f"{', '.join(known) or 'none'}"
        )

    def n(name: str | None) -> str | None:
        return mapping.get(name, name) if name is not None else None

    segments = tuple(
        Segment(s.id, n(s.speaker), s.start, s.end, s.text,
                tuple(replace(w, speaker=n(w.speaker)) for w in s.words))
        for s in t.segments
    )
    scores: dict[str, float] = {}
    for name, score in t.speaker_scores.items():
        # A merged speaker keeps the better of the two voice matches.
        scores[n(name)] = max(score, scores.get(n(name), score))
    return t.with_changes(
        speakers=tuple(dict.fromkeys(n(s) for s in t.speakers)),
        segments=segments,
        turns=tuple(Turn(n(x.speaker), x.start, x.end) for x in t.turns),
        speaker_scores=scores,
    )


def journal_path(transcript_path: Path) -> Path:
    return transcript_path.with_name(f".{transcript_path.name}.rename")


def rename_speakers(transcript_path: str | os.PathLike, mapping: Mapping[str, str], *, index=None) -> list[Path]:
    """Rename speakers in TRANSCRIPT.json, the exports <stem>.<ext> that exist beside it and, given an
    Index, the episode in it. Returns the files rewritten.

    Everything is checked and formatted before anything is written, then written as one change by
    replace_episode (a journal; see there): the same command run again after a kill at any point completes
    the rename, instead of failing on names already renamed.
    """
    path = Path(transcript_path)
    current = read_transcript(path)  # validated: any fault is one line before anything is written
    raw = path.read_bytes()
    journal = journal_path(path)
    index_dir = str(Path(index.path).resolve()) if index is not None else None
    pending = _read_journal(journal)
    if pending is not None and pending.get("kind", "rename") == "rename" and (
            "json" in pending or _digest(raw) == pending["to"]):
        # An earlier rename got past its journal; files or the index may not all have been replaced.
        if pending["mapping"] != dict(mapping) or pending["index"] not in (None, index_dir):
            again = " ".join(f"{k}={v!r}" for k, v in pending["mapping"].items())
            where = f" --index {pending['index']}" if pending["index"] else ""
            raise UsageError(f"{path}: an earlier rename was interrupted; finish it first with the same command "
                             f"(majlis rename {path} {again}{where})")
        if "json" in pending:
            return finish_interrupted(path, index=index)
        renamed = current  # a journal of an older majlis: the transcript is renamed, the rest is redone
    else:
        if pending is not None and "json" in pending:  # another change (the editor's) to complete first
            finish_interrupted(path, index=index)
            current = read_transcript(path)
        renamed = apply_mapping(current, mapping)
    return replace_episode(path, renamed, index=index, record={"kind": "rename", "mapping": dict(mapping)})


def replace_episode(transcript_path: str | os.PathLike, new: Transcript, *, index=None, record: Mapping | None = None,
                    appends: Iterable[tuple[Path, bytes]] = ()) -> list[Path]:
    """Replace a transcript JSON, every export that exists beside it, the episode in `index` (one commit) and
    append `appends` (path, bytes) to files, as one change. Returns the files rewritten.

    Several files and an index cannot be replaced in one step, so a journal beside the transcript
    (.<name>.rename: the new transcript JSON, what to append where, the index, plus `record`) is written,
    synced and renamed into place first: before it exists, nothing has changed; once it exists the change
    is decided, and finish_interrupted (run by `majlis rename`, by `majlis serve --edit` at start and before
    each edit) completes it after a kill at any later point. The journal is removed last.
    """
    path = Path(transcript_path)
    raw = path.read_bytes()
    new_json = transcript_json(new)
    index_dir = str(Path(index.path).resolve()) if index is not None else None
    pending = {**dict(record or {}), "from": _digest(raw), "to": _digest(new_json.encode("utf-8")),
               "index": index_dir, "json": new_json,
               "appends": [[str(p), _size(Path(p)), data.decode("utf-8")] for p, data in appends]}
    atomic_write_text(journal_path(path), json.dumps(pending, ensure_ascii=False))
    return _complete(path, pending, index)


def finish_interrupted(transcript_path: str | os.PathLike, *, index=None) -> list[Path]:
    """Complete a change whose journal is beside the transcript (see replace_episode); [] when there is none.
    `index`: an open Index, used when it is the one the journal names (else that index is opened here)."""
    path = Path(transcript_path)
    pending = _read_journal(journal_path(path))
    if pending is None or "json" not in pending:
        return []
    return _complete(path, pending, index)


def _complete(path: Path, pending: Mapping, index) -> list[Path]:
    new = Transcript.from_dict(json.loads(pending["json"]))  # exports from the JSON as written: same bytes on a retry
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.stem
    texts: list[tuple[Path, bytes]] = []
    options = ExportOptions(audio_url=relative_url(new.audio, path.parent))
    for writer in WRITERS.values():
        export = path.with_name(f"{stem}.{writer.extension}")
        if writer.name == "json" or export == path or not export.is_file():
            continue
        texts.append((export, writer.render(new, options)))
    for target, size, text in pending.get("appends", ()):
        # Cut back to the size before the change, so a retry appends once.
        target = Path(target)
        old = target.read_bytes()[:size] if target.is_file() else b""
        texts.append((target, old + text.encode("utf-8")))
    written = [atomic_write_bytes(p, data) for p, data in texts]
    written.insert(0, atomic_write_text(path, pending["json"]))
    if pending.get("index"):
        own = index is None or str(Path(index.path).resolve()) != pending["index"]
        if own:
            from ..search import Index

            index = Index(pending["index"])
        try:
            index.add([new], transcript_paths={new.episode: path.resolve()})
        finally:
            if own:
                index.close()
    journal_path(path).unlink(missing_ok=True)
    return written


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_journal(journal: Path) -> dict | None:
    """The interrupted rename recorded there, or None (no journal, or one this version cannot read: it is
    overwritten by the next rename)."""
    try:
        record = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not {"from", "to", "index"} <= set(record) or not (
            "mapping" in record or "json" in record):
        return None
    return record
