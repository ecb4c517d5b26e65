"""SQLite FTS5 baseline for the search benchmark: the same segments, the same queries, the same result size.

It does the same per-hit work majlis does (parse the stored word timings, find the matched words' audio
offsets), so the comparison is engine against engine, not engine against a bare row count.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Iterable

_TOKEN = re.compile(r"[\w'\-]+")


class Fts:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS seg USING fts5("
            "text, speaker UNINDEXED, episode UNINDEXED, audio UNINDEXED, start UNINDEXED, end UNINDEXED, "
            "words UNINDEXED, tokenize='unicode61')"
        )

    def add(self, transcripts: Iterable) -> int:
        rows = []
        for t in transcripts:
            for s in t.segments:
                words = json.dumps([[w.word, round(w.start, 3), round(w.end, 3)] for w in s.words])
                rows.append((s.text, s.speaker, t.episode, t.audio, s.start, s.end, words))
        with self.db:
            self.db.executemany("INSERT INTO seg VALUES (?,?,?,?,?,?,?)", rows)
        return len(rows)

    def search(self, query: str, speakers: tuple[str, ...] = (), limit: int = 20) -> list[dict]:
        terms = [t.lower() for t in _TOKEN.findall(query)]
        match = '"' + " ".join(terms).replace('"', "") + '"'  # FTS5 phrase (one term: a plain term)
        sql = (
            "SELECT episode, audio, speaker, start, end, words, highlight(seg, 0, '[', ']'), rank "
            "FROM seg WHERE seg MATCH ?"
        )
        params: list = [match]
        if speakers:
            sql += f" AND speaker IN ({','.join('?' * len(speakers))})"
            params.extend(speakers)
        sql += " ORDER BY rank LIMIT ?"
        params.append(limit)
        hits = []
        for episode, audio, speaker, start, end, words, text, rank in self.db.execute(sql, params):
            ws = json.loads(words)
            lowered = [_norm(w[0]) for w in ws]
            first = terms[0] if terms else ""
            at = next((i for i, w in enumerate(lowered) if w == first), 0)
            last = min(at + len(terms) - 1, len(ws) - 1)
            hits.append(
                {"episode": episode, "audio": audio, "speaker": speaker, "start": ws[at][1] if ws else start,
                 "end": ws[last][2] if ws else end, "segment_start": start, "segment_end": end, "text": text,
                 "score": -rank}
            )
        return hits

    def count(self, query: str, speakers: tuple[str, ...] = ()) -> int:
        """How many segments match: the length of the posting lists an engine has to walk."""
        terms = [t.lower() for t in _TOKEN.findall(query)]
        sql, params = "SELECT count(*) FROM seg WHERE seg MATCH ?", ['"' + " ".join(terms) + '"']
        if speakers:
            sql += f" AND speaker IN ({','.join('?' * len(speakers))})"
            params.extend(speakers)
        return self.db.execute(sql, params).fetchone()[0]

    def size_bytes(self) -> int:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))

    def close(self) -> None:
        self.db.close()


def _norm(word: str) -> str:
    return word.lower().strip(".,;:!?\"()")
