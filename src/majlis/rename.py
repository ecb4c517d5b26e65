"""Rename speakers in a written transcript and in every export beside it, without running any model."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping

from .errors import UsageError
from .files import atomic_write_bytes, atomic_write_text, read_transcript, transcript_json
from .types import Segment, Transcript, Turn
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

    Everything is checked and formatted before anything is written. Several files and an index cannot be
    replaced in one step, so a journal beside the transcript (.<name>.rename: the mapping, the transcript's
    bytes before and after, the index) is written first and removed last: the same command run again after
    a kill at any point finds it and completes the rename, instead of failing on names already renamed.
    """
    path = Path(transcript_path)
    current = read_transcript(path)  # validated: any fault is one line before anything is written
    raw = path.read_bytes()
    journal = journal_path(path)
    index_dir = str(Path(index.path).resolve()) if index is not None else None
    pending = _read_journal(journal)
    if pending is not None and _digest(raw) == pending["to"]:
        # The transcript was rewritten; exports or the index may not have been.
        if pending["mapping"] != dict(mapping) or pending["index"] not in (None, index_dir):
            again = " ".join(f"{k}={v!r}" for k, v in pending["mapping"].items())
            where = f" --index {pending['index']}" if pending["index"] else ""
            raise UsageError(f"{path}: an earlier rename was interrupted; finish it first with the same command "
                             f"(majlis rename {path} {again}{where})")
        renamed = current
    else:
        renamed = apply_mapping(current, mapping)
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.stem
    texts: list[tuple[Path, bytes]] = []
    options = ExportOptions(audio_url=relative_url(renamed.audio, path.parent))
    for writer in WRITERS.values():
        export = path.with_name(f"{stem}.{writer.extension}")
        if writer.name == "json" or export == path or not export.is_file():
            continue
        texts.append((export, writer.render(renamed, options)))
    new_json = transcript_json(renamed)
    record = {"mapping": dict(mapping), "from": _digest(raw), "to": _digest(new_json.encode("utf-8")),
              "index": index_dir}
    atomic_write_text(journal, json.dumps(record, ensure_ascii=False))
    written = [atomic_write_bytes(p, data) for p, data in texts]
    written.insert(0, atomic_write_text(path, new_json))
    if index is not None:
        index.add([renamed], transcript_paths={renamed.episode: path.resolve()})
    journal.unlink()
    return written


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_journal(journal: Path) -> dict | None:
    """The interrupted rename recorded there, or None (no journal, or one this version cannot read: it is
    overwritten by the next rename)."""
    try:
        record = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not {"mapping", "from", "to", "index"} <= set(record):
        return None
    return record
