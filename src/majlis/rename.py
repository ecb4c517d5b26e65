"""Rename speakers in a written transcript and in every export beside it, without running any model."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping

from .errors import UsageError
from .files import atomic_write_text, read_transcript, transcript_json
from .types import Segment, Transcript, Turn
from .writers import WRITERS


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


def rename_speakers(transcript_path: str | os.PathLike, mapping: Mapping[str, str]) -> list[Path]:
    """Rename speakers in TRANSCRIPT.json and rewrite the exports <stem>.<ext> that exist beside it.

    Returns the files rewritten. Every file is replaced whole; the transcript JSON is written last, so an
    interrupted rename leaves it with the old names and the same command can simply be run again.
    """
    path = Path(transcript_path)
    renamed = apply_mapping(read_transcript(path), mapping)
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.stem
    written: list[Path] = []
    for writer in WRITERS.values():
        export = path.with_name(f"{stem}.{writer.extension}")
        if writer.name == "json" or export == path or not export.is_file():
            continue
        written.append(atomic_write_text(export, writer.format(renamed)))
    written.insert(0, atomic_write_text(path, transcript_json(renamed)))
    return written
