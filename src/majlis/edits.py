"""Corrections to a written transcript (`majlis serve --edit`): the pure edit operations, their append-only
history beside the transcript (<stem>.edits.jsonl) and saving one edit as one change.

Words are addressed by position: [segment, word] in the transcript's segments as saved at `version` (the
first 16 hex digits of the SHA-256 of the transcript JSON file). A save names the version it was made
against; a save against any other version is refused (Stale, HTTP 409), so positions are never applied to
a transcript they were not read from, and no edit is lost to a concurrent one.

Operations (each a dict with "op"):
  fix_word       seg, word, text   the word's text; several words typed over one share its span evenly,
                                   nothing typed removes the word
  reassign       start: [seg, word], end: [seg, word], speaker
                                   the words from start to end (inclusive) to another speaker: each segment
                                   they cut is split around them
  split          seg, word         a new segment (same speaker) from that word on
  merge          seg               that segment and the next one (same speaker) as one
  rename_speaker old, new          everywhere in the episode (renaming onto an existing name merges the two)
  undo                             the latest edit not already undone

Each saved edit is one history line: {"id", "who", "when", "op", "args", "version_before", "version_after",
"before", "after"}, where before/after are the part of the transcript that changed: {"at": first segment,
"segments": [...]} plus "speakers", "turns", "speaker_scores" when those changed. An undo is a line too
("op": "undo", "undoes": id); lines are never rewritten.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from .align import join_words
from .errors import MajlisError, UsageError
from .files import read_transcript, transcript_json
from .types import Segment, Transcript, Word

HISTORY_SUFFIX = ".edits.jsonl"
OPS = ("fix_word", "reassign", "split", "merge", "rename_speaker", "undo")
MAX_WORD_TEXT = 1000
MAX_NAME = 200


class EditError(UsageError):
    """An edit that does not fit the transcript (HTTP 400)."""


class Refused(MajlisError):
    """A save or undo that would overwrite a change made since (HTTP 409): Stale or Conflict."""

    status = 409


class Stale(Refused):
    """The transcript is no longer the version the edit was made against."""


class Conflict(Refused):
    """An undo whose edit was overtaken by a later change made outside the editor."""


# -- versions and history --------------------------------------------------------------------------------

def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _stem(transcript_path: Path) -> str:
    name = transcript_path.name
    return name[: -len(".json")] if name.endswith(".json") else transcript_path.stem


def history_path(transcript_path: str | os.PathLike) -> Path:
    path = Path(transcript_path)
    return path.with_name(_stem(path) + HISTORY_SUFFIX)


def read_history(transcript_path: str | os.PathLike) -> list[dict[str, Any]]:
    """The history's records in order ([] without one); a line that is not a record is skipped."""
    try:
        lines = history_path(transcript_path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "id" in record and "op" in record:
            out.append(record)
    return out


def undo_stack(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The edits in effect, oldest first: each undo takes the latest one off."""
    stack: list[dict[str, Any]] = []
    for record in history:
        if record["op"] == "undo":
            stack = [r for r in stack if r["id"] != record.get("undoes")]
        else:
            stack.append(record)
    return stack


def refuse_if_edited(transcript_path: str | os.PathLike, force: bool) -> None:
    """For transcribe and batch: writing a fresh transcript over a corrected one would lose the corrections."""
    history = history_path(transcript_path)
    if not force and history.is_file() and undo_stack(read_history(transcript_path)):
        raise UsageError(f"{transcript_path} was corrected in the editor ({history.name}); transcribing it again "
                         f"would throw the corrections away: add --force to do it anyway")


# -- the operations --------------------------------------------------------------------------------------

def _renumber(segments: list[Segment]) -> tuple[Segment, ...]:
    return tuple(s if s.id == i else replace(s, id=i) for i, s in enumerate(segments))


def _segment(speaker: str, words: list[Word] | tuple[Word, ...], start: float | None = None,
             end: float | None = None) -> Segment:
    words = tuple(words)
    lo = words[0].start if start is None else start
    hi = max(w.end for w in words) if end is None else end
    return Segment(0, speaker, lo, max(hi, lo), join_words(w.word for w in words), words)


def _seg(t: Transcript, i: Any) -> Segment:
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(t.segments):
        raise EditError(f"segment {i!r}: the episode has segments 0 to {len(t.segments) - 1}")
    return t.segments[i]


def _word(s: Segment, i: Any) -> Word:
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(s.words):
        raise EditError(f"word {i!r}: segment {s.id} has {len(s.words)} words")
    return s.words[i]


def _name(name: Any, what: str = "speaker") -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or any(c in name for c in "\n\r\t"):
        raise EditError(f"{what} {str(name)[:40]!r}: give a name of 1 to {MAX_NAME} characters on one line")
    return name.strip()


def _with_speakers(t: Transcript, segments: list[Segment]) -> Transcript:
    used = [s.speaker for s in segments]
    return t.with_changes(segments=_renumber(segments), speakers=tuple(dict.fromkeys([*t.speakers, *used])))


def fix_word(t: Transcript, seg: int, word: int, text: str) -> Transcript:
    s = _seg(t, seg)
    w = _word(s, word)
    if not isinstance(text, str) or len(text) > MAX_WORD_TEXT:
        raise EditError(f"text: give the word's new text (at most {MAX_WORD_TEXT} characters)")
    typed = text.split()
    if not typed and len(s.words) == 1:
        raise EditError("that is the segment's only word: merge the segment or give it other text")
    # Several words typed over one share its span evenly; each keeps the replaced word's speaker.
    step = (w.end - w.start) / max(1, len(typed))
    new = [replace(w, word=x, start=w.start + k * step, end=w.end if k == len(typed) - 1 else w.start + (k + 1) * step,
                   probability=None) for k, x in enumerate(typed)]
    words = [*s.words[:word], *new, *s.words[word + 1:]]
    segments = list(t.segments)
    segments[seg] = Segment(s.id, s.speaker, s.start, s.end, join_words(x.word for x in words), tuple(words))
    return _with_speakers(t, segments)


def reassign(t: Transcript, start: Any, end: Any, speaker: str) -> Transcript:
    speaker = _name(speaker)
    try:
        (sa, wa), (sb, wb) = start, end
    except (TypeError, ValueError):
        raise EditError("start and end: give [segment, word] pairs") from None
    _word(_seg(t, sa), wa)
    _word(_seg(t, sb), wb)
    if (sb, wb) < (sa, wa):
        raise EditError("end comes before start")
    segments: list[Segment] = list(t.segments[:sa])
    for i in range(sa, sb + 1):
        s = t.segments[i]
        lo = wa if i == sa else 0
        hi = wb if i == sb else len(s.words) - 1
        if not s.words:  # a segment without word times goes whole
            segments.append(replace(s, speaker=speaker))
            continue
        pieces = [(s.speaker, s.words[:lo], False),
                  (speaker, [replace(w, speaker=speaker, speaker_confidence=None) for w in s.words[lo:hi + 1]], True),
                  (s.speaker, s.words[hi + 1:], False)]
        pieces = [p for p in pieces if p[1]]
        for k, (who, words, _) in enumerate(pieces):
            segments.append(_segment(who, words, s.start if k == 0 else None,
                                     s.end if k == len(pieces) - 1 else None))
    segments += t.segments[sb + 1:]
    return _with_speakers(t, segments)


def split(t: Transcript, seg: int, word: int) -> Transcript:
    s = _seg(t, seg)
    _word(s, word)
    if word == 0:
        raise EditError("a segment is split before one of its words other than the first")
    first = _segment(s.speaker, s.words[:word], s.start)
    second = _segment(s.speaker, s.words[word:], None, s.end)
    return _with_speakers(t, [*t.segments[:seg], first, second, *t.segments[seg + 1:]])


def merge(t: Transcript, seg: int) -> Transcript:
    a = _seg(t, seg)
    if seg + 1 >= len(t.segments):
        raise EditError("the last segment has no next segment to merge with")
    b = t.segments[seg + 1]
    if a.speaker != b.speaker:
        raise EditError(f"segments {seg} and {seg + 1} have different speakers ({a.speaker}, {b.speaker}): give "
                        f"the words to one speaker first")
    words = (*a.words, *b.words)
    text = join_words(w.word for w in words) if words else " ".join(x for x in (a.text, b.text) if x)
    merged = Segment(0, a.speaker, a.start, max(a.end, b.end), text, words)
    return _with_speakers(t, [*t.segments[:seg], merged, *t.segments[seg + 2:]])


def rename_speaker(t: Transcript, old: str, new: str) -> Transcript:
    from .export.rename import apply_mapping

    old, new = _name(old), _name(new)
    try:
        return apply_mapping(t, {old: new})
    except UsageError as e:
        raise EditError(str(e)) from None


def apply(t: Transcript, op: Mapping[str, Any]) -> Transcript:
    """The transcript with one edit operation (not undo) applied; EditError when it does not fit."""
    name = op.get("op")
    args = {k: v for k, v in op.items() if k != "op"}
    fns = {"fix_word": (fix_word, ("seg", "word", "text")), "reassign": (reassign, ("start", "end", "speaker")),
           "split": (split, ("seg", "word")), "merge": (merge, ("seg",)),
           "rename_speaker": (rename_speaker, ("old", "new"))}
    if name not in fns:
        raise EditError(f"op {str(name)[:40]!r}: one of {', '.join(OPS)}")
    fn, params = fns[name]
    missing = [p for p in params if p not in args]
    extra = [k for k in args if k not in params]
    if missing or extra:
        raise EditError(f"{name} takes {', '.join(params)}" + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown {', '.join(extra)}" if extra else ""))
    return fn(t, **args)


# -- before/after, and undo ------------------------------------------------------------------------------

FIELDS = ("speakers", "turns", "speaker_scores")


def _plain(segments) -> list[dict[str, Any]]:
    out = []
    for s in segments:
        d = s.to_dict()
        d.pop("id")
        out.append(d)
    return out


def diff(old: Transcript, new: Transcript) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after): the segments between the common head and tail, and the other fields that changed."""
    a, b = _plain(old.segments), _plain(new.segments)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    before: dict[str, Any] = {"at": head, "segments": a[head:len(a) - tail]}
    after: dict[str, Any] = {"at": head, "segments": b[head:len(b) - tail]}
    od, nd = old.to_dict(), new.to_dict()
    for f in FIELDS:
        if od.get(f) != nd.get(f):
            before[f], after[f] = od.get(f, {} if f == "speaker_scores" else []), nd.get(f, {} if f == "speaker_scores" else [])
    return before, after


def undo(t: Transcript, record: Mapping[str, Any]) -> Transcript:
    """The transcript with `record`'s change taken back; Conflict when its "after" is no longer there."""
    before, after = record["before"], record["after"]
    at, now = after["at"], _plain(t.segments)
    td = t.to_dict()
    if now[at:at + len(after["segments"])] != after["segments"] or any(
            td.get(f, {} if f == "speaker_scores" else []) != after[f] for f in FIELDS if f in after):
        raise Conflict(f"edit {record['id']} ({record['op']}) cannot be undone: the transcript was changed since "
                       f"outside the editor's history (by majlis rename or a new transcription)")
    d = dict(td)
    d["segments"] = [dict(s, id=0) for s in [*now[:at], *before["segments"], *now[at + len(after["segments"]):]]]
    for f in FIELDS:
        if f in before:
            d[f] = before[f]
    new = Transcript.from_dict(d)
    return new.with_changes(segments=_renumber(list(new.segments)))


# -- saving ----------------------------------------------------------------------------------------------

@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One save at a time per transcript, across threads and processes."""
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def current_version(transcript_path: str | os.PathLike) -> str:
    return version_of(Path(transcript_path).read_bytes())


def describe(record: Mapping[str, Any] | None) -> str | None:
    """One line for the page's undo button: "fix word 'teh' -> 'the'"."""
    if record is None:
        return None
    args, op = record.get("args", {}), record["op"]
    if op == "fix_word":
        old = next(iter(record["before"]["segments"]), {}).get("words", [])
        was = old[args.get("word", 0)]["word"] if args.get("word", 0) < len(old) else "?"
        return f"fix word {was!r} -> {args.get('text', '')!r}"
    if op == "reassign":
        return f"words to {args.get('speaker')}"
    if op == "rename_speaker":
        return f"rename {args.get('old')} -> {args.get('new')}"
    return {"split": "split segment", "merge": "merge segments"}.get(op, op)


def save(transcript_path: str | os.PathLike, op: Mapping[str, Any], *, version: str, who: str,
         index=None, now: datetime | None = None) -> dict[str, Any]:
    """Apply one edit (or undo) to the transcript at `version` and save it with every export, the episode in
    `index` and its history line as one change (rename.replace_episode). Returns {"version", "record"}
    ("record" None when the edit changed nothing). Stale if the transcript is not at `version`."""
    from .export.rename import finish_interrupted, replace_episode

    path = Path(transcript_path)
    with _locked(path):
        finish_interrupted(path, index=index)  # a save killed half way is completed before anything else
        raw = path.read_bytes()
        if version != version_of(raw):
            raise Stale("this episode was saved by someone else (or another command) since you loaded it; nothing "
                        "was saved: reload the page and make your change again")
        t = read_transcript(path)
        history = read_history(path)
        name = op.get("op")
        if name == "undo":
            stack = undo_stack(history)
            if not stack:
                raise EditError("nothing to undo")
            target = stack[-1]
            new = undo(t, target)
            args: dict[str, Any] = {}
        else:
            new = apply(t, op)
            target, args = None, {k: v for k, v in op.items() if k != "op"}
        if new == t:
            return {"version": version, "record": None}
        before, after = diff(t, new)
        record: dict[str, Any] = {
            "id": max((r["id"] for r in history if isinstance(r.get("id"), int)), default=0) + 1,
            "who": who, "when": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            "op": name, "args": args, "version_before": version,
            "version_after": version_of(transcript_json(new).encode("utf-8")), "before": before, "after": after}
        if target is not None:
            record["undoes"] = target["id"]
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        replace_episode(path, new, index=index, record={"kind": "edit", "edit": record["id"]},
                        appends=[(history_path(path), line.encode("utf-8"))])
        return {"version": record["version_after"], "record": record}
