"""The Whoosh index: one document per segment plus one metadata document per episode.

An episode's documents share the `episode` term, so replacing an episode is one delete_by_term plus its new
documents in the same writer: one commit, and a searcher sees either the old episode or the new one.
Hits carry the audio offsets of the matched words, found by running the field's own analyzer over the
segment's stored words (see query.py for how query terms are mapped onto them).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from whoosh import index as whoosh_index
from whoosh.collectors import FilterCollector
from whoosh.index import LockError
from whoosh.query import And, NullQuery, Or, Phrase, Term

from ..errors import AudioError, IndexBusy, IndexMissing, OutputError, UsageError
from ..files import DISK_FULL, find_recording
from ..types import Hit, Transcript
from .query import WORDS, expand_words, normalize, parse_query, positive_leaves, span_and_snippet, split_filters
from .schema import ANALYZER, SCHEMA, media_url, pack_words, speaker_key, unpack_words
from .searchers import Budgeted, Deadline, SearcherPool, no_gc
from .whoosh import fastscore, phrase

log = logging.getLogger("majlis")


BUSY_TIMEOUT = 5.0
# Seconds one search may take before it stops with SearchTooSlow; every search checks it as it goes.
SEARCH_BUDGET = 5.0


def _found(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _episode_record(t: Transcript, transcript_path: Path | None) -> dict[str, Any]:
    talk: dict[str, float] = {}
    for s in t.segments:
        talk[s.speaker] = talk.get(s.speaker, 0.0) + max(0.0, s.end - s.start)
    speakers = list(t.speakers) + [s for s in talk if s not in t.speakers]
    record: dict[str, Any] = {
        "episode": t.episode,
        "audio": t.audio,
        "duration": round(t.duration, 3),
        "speakers": speakers,
        "segments": len(t.segments),
        "transcript": str(Path(transcript_path).resolve()) if transcript_path is not None else None,
        "language": t.language,
        "words": sum(len(s.words) for s in t.segments),
        "talk_time": {k: round(v, 3) for k, v in talk.items()},
        "audio_path": _found(find_recording(t.audio, transcript_path)),
    }
    for key in ("title", "date"):
        if t.metadata.get(key):
            record[key] = str(t.metadata[key])
    if t.metadata:
        record["metadata"] = {str(k): str(v) for k, v in t.metadata.items()}
    return record


def _readable_record(raw: Any) -> dict[str, Any] | None:
    """An episode record as read back. An older majlis indexed transcripts that are refused today (a number or
    null among the speakers, NaN times, a dict for a title): such a record is made readable, field by field,
    rather than breaking every listing and page; one without an episode id is left out."""
    if not isinstance(raw, dict) or not isinstance(raw.get("episode"), str) or not raw["episode"]:
        return None
    r = dict(raw)

    def number(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    r["speakers"] = [x for x in r.get("speakers") or () if isinstance(x, str)] if isinstance(r.get("speakers"), list) else []
    talk = r.get("talk_time")
    r["talk_time"] = {k: number(v) for k, v in talk.items() if isinstance(k, str) and number(v) is not None} \
        if isinstance(talk, dict) else {}
    r["duration"] = max(0.0, number(r.get("duration")) or 0.0)
    for key in ("segments", "words"):
        r[key] = int(number(r.get(key)) or 0)
    for key in ("audio", "title", "date", "language", "transcript", "audio_path"):
        if r.get(key) is not None and not isinstance(r[key], str):
            r[key] = str(r[key])
    if not isinstance(r.get("metadata", {}), dict):
        r["metadata"] = {}
    return r


_WEIGHTING = fastscore.Weighting()


class Index:
    """A folder holding a Whoosh index of transcripts. Safe to search while another process writes.

    Index(path) opens one and raises IndexMissing where there is none; Index(path, create=True) also makes one in
    a missing or empty folder (dotfiles aside). add() indexes Transcripts, search() finds Hits.
    """

    def __init__(self, path: str | Path = "index", *, create: bool = False, busy_timeout: float = BUSY_TIMEOUT):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._pool = SearcherPool(self)
        self._searches = 0
        if self.path.is_dir() and whoosh_index.exists_in(str(self.path)):
            self._ix = whoosh_index.open_dir(str(self.path))
            # Field names only: an index written with the first schema (NUMERIC times, stored text) reads
            # and writes as before.
            missing = set(SCHEMA.names()) - set(self._ix.schema.names()) - {phrase.PAIRS, WORDS}
            if missing:
                raise IndexMissing(f"{self.path}: not a majlis index (no {', '.join(sorted(missing))} fields)")
            return
        # A folder of dotfiles only (a clone's index/.gitkeep) is an index with nothing in it yet.
        empty = self.path.is_dir() and all(p.name.startswith(".") for p in self.path.iterdir())
        if not create:
            if self.path.exists() and not empty:
                raise IndexMissing(f"{self.path}: not a majlis index")
            raise IndexMissing(f"{self.path}: no index here yet, nothing is indexed (create one with: majlis index "
                               f"TRANSCRIPT.json --index {self.path}, or majlis transcribe ... --index {self.path})")
        if self.path.exists() and not empty:
            raise IndexMissing(f"{self.path}: exists and is not a majlis index (refusing to create one inside it)")
        self.path.mkdir(parents=True, exist_ok=True)
        self._ix = whoosh_index.create_in(str(self.path), SCHEMA)

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    def new_searcher(self):
        return self._ix.searcher(weighting=_WEIGHTING)

    def generation(self) -> int:
        """The latest commit's generation, or IndexMissing once the index files are gone."""
        try:
            latest = self._ix.latest_generation()  # lists the folder: -1 once the index files are gone
        except OSError:
            latest = -1
        if latest < 0:
            raise IndexMissing(f"{self.path}: the index is gone (deleted or moved while in use)")
        return latest

    # -- writing ---------------------------------------------------------------------------------------

    def _writer(self):
        try:
            # compound=False: one file per part of a segment. Whoosh reads a part of a compound file by
            # copying it into memory first, so every fresh process (each `majlis search`) copied the postings
            # and stored fields: ~0.2 s at 1,000 h (BENCHMARKS.md, section 3).
            return self._ix.writer(timeout=self.busy_timeout, delay=0.1, compound=False)
        except LockError:
            raise IndexBusy(f"{self.path}: another process is writing to this index (waited "
                            f"{self.busy_timeout:g} s); try again when it has finished") from None

    def add(self, transcripts: Iterable[Transcript], *, transcript_paths: Mapping[str, Path] | None = None) -> None:
        """Add or replace episodes, all in one commit."""
        by_episode: dict[str, Transcript] = {}
        for t in transcripts:
            if t.episode in by_episode:
                log.warning("episode %s given twice; the last one is indexed", t.episode)
            by_episode[t.episode] = t
        if not by_episode:
            return
        paths = dict(transcript_paths or {})
        # Build every document before taking the lock: the writer is held only for the write itself.
        docs = {ep: self._documents(t, paths.get(ep)) for ep, t in by_episode.items()}
        writer = self._writer()
        try:
            for ep, episode_docs in docs.items():
                writer.delete_by_term("episode", ep)
                for doc in episode_docs:
                    writer.add_document(**doc)
        except BaseException as e:
            writer.cancel()
            self._raise_output(e)
            raise
        try:
            writer.commit()
        except OSError as e:  # a full disk mid-commit: whoosh leaves the previous generation in place
            try:
                writer.cancel()  # gives the lock back
            except Exception:
                pass
            self._raise_output(e)

    def _documents(self, t: Transcript, transcript_path: Path | None) -> list[dict[str, Any]]:
        record = _episode_record(t, transcript_path)
        docs = [{"kind": "meta", "episode": t.episode, "meta": json.dumps(record, ensure_ascii=False)}]
        with_pairs = phrase.PAIRS in self._ix.schema
        with_spoken = WORDS in self._ix.schema
        for s in t.segments:
            packed = pack_words(s)
            words, _ = unpack_words(packed, s.start)
            doc = {"kind": "seg", "episode": t.episode, "audio": t.audio, "speaker": s.speaker,
                   "speaker_key": speaker_key(s.speaker), "seg": s.id, "start": float(s.start),
                   "end": float(s.end), "text": " ".join(words), "words": packed}
            if with_pairs:
                doc[phrase.PAIRS] = doc["text"]
            if with_spoken:
                doc[WORDS] = doc["text"]
            docs.append(doc)
        return docs

    def _raise_output(self, e: BaseException) -> None:
        if isinstance(e, OSError):
            hint = ": free some space and run it again" if e.errno == errno.ENOSPC else ""
            raise OutputError(f"{self.path}: cannot write the index ({e.strerror or e}{hint})",
                              disk_full=e.errno in DISK_FULL) from None

    def optimize(self) -> None:
        """Merge the index into one whoosh segment. Each commit adds a segment and whoosh merges only small
        ones, so bulk loading leaves many; every search pays a little for each (its files are opened and
        each query term is looked up in each): at 1,000 h loaded 25 h at a time, 20 of them."""
        writer = self._writer()
        try:
            writer.commit(optimize=True)
        except BaseException:
            writer.cancel()
            raise

    def remove(self, episode: str) -> None:
        writer = self._writer()
        try:
            writer.delete_by_term("episode", episode)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    # -- reading ---------------------------------------------------------------------------------------

    def _search_with(self, fn):
        # Whoosh readers are not safe to share between threads mid-read, so each search has a searcher to
        # itself, from a small pool: one slow search does not hold up the others.
        with self._pool.searcher() as searcher, no_gc():
            return fn(searcher)

    def search(self, query: str, *, speakers: Sequence[str] = (), speaker: str | None = None,
               episode: str | None = None, limit: int = 20, budget: float | None = SEARCH_BUDGET) -> list[Hit]:
        """Returns the segments matching `query` (the query language of `majlis search`), best first, at most
        `limit`: a list of Hit, each with the audio offsets of its matched words. `speaker`/`speakers` keep only
        those speakers' segments (case aside), `episode` one episode's; `speaker:NAME` in the query narrows it
        the same way (both given: both must hold). Raises QueryError for a malformed query, and SearchTooSlow
        for a search running past `budget` seconds."""
        if limit < 1:
            raise UsageError(f"limit must be at least 1 (got {limit})")
        if isinstance(speakers, str):
            speakers = (speakers,)
        if speaker is not None:
            speakers = (*speakers, speaker)
        if any(not str(s).strip() for s in speakers):
            raise UsageError("an empty speaker name: give the name to filter by")
        if episode is not None and not episode.strip():
            raise UsageError("an empty episode id: give the episode to search in (majlis episodes lists them)")
        text, named = split_filters(normalize(str(query or "")))
        parsed = parse_query(text, SCHEMA)
        filters = []
        if speakers:
            filters.append(Or([Term("speaker_key", speaker_key(s)) for s in speakers]))
        if named:
            filters.append(Or([Term("speaker_key", speaker_key(s)) for s in named]))
        if episode is not None:
            filters.append(Term("episode", episode))
        combined = None
        if filters:
            combined = filters[0] if len(filters) == 1 else And(filters)
        deadline = Deadline(budget)

        def run(searcher):
            if searcher.doc_count() == 0:  # created and never written (or emptied): nothing to read
                return []
            q = expand_words(parsed, searcher.reader(), ANALYZER)
            if q is NullQuery:
                return []
            leaves = positive_leaves(q, searcher.reader(), deadline)
            deadline()
            top = None
            if type(q) in (Term, Phrase) and q.fieldname == "text" and q.boost == 1.0:  # the common shapes
                allow = None if combined is None else set(searcher.docs_for_query(combined))
                # numpy scores long posting lists several times faster than a Python loop, but importing it
                # takes ~0.1 s: a `majlis search` (one query, then exit) does without it; a process that
                # searches again (the web app) imports it once, for its second search on.
                use_numpy = self._searches > 0 or "numpy" in sys.modules
                self._searches += 1
                if type(q) is Term:
                    top = fastscore.top_term(searcher, q.fieldname, q.text, limit, allow, use_numpy=use_numpy,
                                             check=deadline)
                else:
                    top = phrase.top_phrase(searcher, q.fieldname, q.words, q.slop, limit, allow,
                                            use_numpy=use_numpy, pairs_field=phrase.PAIRS, check=deadline)
            if top is None:
                collector = Budgeted(searcher.collector(limit=limit), deadline)
                if combined is not None:  # outside: it takes the matches from the budgeted one
                    collector = FilterCollector(collector, combined)
                searcher.search_with_collector(q, collector)
                top = [(r.score, r.docnum) for r in collector.results()]
            return [self._hit(searcher.stored_fields(docnum), score, leaves) for score, docnum in top]

        return self._search_with(run)

    @staticmethod
    def _hit(doc: dict[str, Any], score: float, leaves) -> Hit:
        seg_start, seg_end = float(doc["start"]), float(doc["end"])
        words, times = unpack_words(doc["words"], seg_start)
        first, last, snippet = span_and_snippet(words, leaves, ANALYZER)
        if times is not None and first is not None:
            start, end = times[first][0], times[last][1]
        else:  # no word times (or nothing mappable): the segment is the best offset we have
            start, end = seg_start, seg_end
        return Hit(episode=doc["episode"], audio=doc["audio"], speaker=doc["speaker"], start=start, end=end,
                   segment_start=seg_start, segment_end=seg_end, text=snippet, score=float(score),
                   url=media_url(doc["audio"], start, end))

    def _records(self, **terms) -> list[dict]:
        def run(searcher):
            found = (_readable_record(json.loads(d["meta"])) for d in searcher.documents(kind="meta", **terms))
            return [r for r in found if r is not None]

        return self._search_with(run)

    def episodes(self) -> list[dict]:
        return sorted(self._records(), key=lambda r: r["episode"])

    def episode(self, episode_id: str) -> dict | None:
        found = self._records(episode=episode_id)
        return found[0] if found else None

    def speakers(self) -> list[dict]:
        totals: dict[str, dict[str, Any]] = {}
        for record in self._records():
            for name, seconds in record.get("talk_time", {}).items():
                entry = totals.setdefault(speaker_key(name), {"speaker": name, "talk_time": 0.0, "episodes": 0})
                entry["talk_time"] += seconds
                entry["episodes"] += 1
        for entry in totals.values():
            entry["talk_time"] = round(entry["talk_time"], 3)
        return sorted(totals.values(), key=lambda e: (-e["talk_time"], e["speaker"]))

    def audio_path(self, episode_id: str) -> Path:
        """The episode's recording on this machine, for cutting clips (files.recording_candidates' rule)."""
        record = self.episode(episode_id)
        if record is None:
            raise UsageError(f"episode {episode_id!r} is not in {self.path} (majlis episodes lists them)")
        from ..views import episode_audio

        found = episode_audio(self, record)
        if found is None:
            raise AudioError(f"episode {episode_id}: recording {record['audio']} not found")
        return found
