"""What the index holds: its analyzer and schema, and how a segment's words and times are packed into it.

The analyzer is pickled into every index's schema: Nfkc and phrase.Pairs are found there by their old module
paths (majlis.index, majlis.phrase), which stay importable for indexes already on disk."""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote

from whoosh.analysis import Filter, StemmingAnalyzer
from whoosh.fields import ID, STORED, TEXT, FieldType, Schema
from whoosh.formats import Existence

from .query import unstemmed
from .whoosh import phrase


class Nfkc(Filter):
    """Tokens in NFKC form: a fullwidth ＴＡＬＩＢＡＮ or a ligature is indexed (and matched in snippets) as the
    plain letters that queries are normalised to (query.normalize)."""

    def __call__(self, tokens):
        for t in tokens:
            if not t.text.isascii():
                t.text = unicodedata.normalize("NFKC", t.text)
            yield t


Nfkc.__module__ = "majlis.index"  # as Pairs (whoosh/phrase.py): the path indexes on disk name it by


# No stop list and no minimum length: a quote is searched word for word ("the", "a" and "I" included),
# and phrase positions stay those of the spoken words. An index written before Nfkc keeps the analyzer it
# was written with (whoosh stores it), which differs only for non-ASCII compatibility forms.
ANALYZER = StemmingAnalyzer(stoplist=None, minsize=1)
ANALYZER.items.insert(1, Nfkc())

SCHEMA = Schema(
    kind=ID(),  # "seg" | "meta"
    episode=ID(stored=True),
    audio=STORED(),
    speaker=STORED(),  # display name
    speaker_key=ID(),  # casefolded name: the --speaker filter is exact but case-insensitive
    seg=STORED(),
    # Stored, not NUMERIC: nothing ranges over or sorts by segment times, and a NUMERIC float indexes a
    # trie of terms per value, which made indexing 2-3x slower (BENCHMARKS.md, section 3).
    start=STORED(),
    end=STORED(),
    # multitoken_query="phrase": a hyphenated or apostrophised word ("al-Qaeda", "it's") is searched as
    # the word sequence it was indexed as, not as two unrelated words. Not stored: hits are built from
    # `words`, which holds the same words with their times.
    text=TEXT(analyzer=ANALYZER, phrase=True, multitoken_query="phrase"),
    # The text's adjacent word pairs, presence only: an exact phrase's candidates (see whoosh/phrase.py). Not in
    # indexes written before it; those answer phrases from word positions alone. Scorable only so that
    # whoosh writes a length column for it: without one its writer looks for the column's file on disk for
    # every posting (a fifth of the indexing time).
    pairs=FieldType(format=Existence(), analyzer=ANALYZER | phrase.Pairs(), scorable=True, stored=False),
    # The words as spoken (lowercased, unstemmed), presence only: what `prefix*` and wildcards search and are
    # ranked by, since a stem need not start with the word's prefix (query.WordPrefix). +17% index size.
    spoken=FieldType(format=Existence(), analyzer=unstemmed(ANALYZER), scorable=True, stored=False),
    words=STORED(),  # compact JSON: [[word, ...], [centisecond deltas] | null]
    meta=STORED(),  # JSON of the episode record (meta documents only)
)

def speaker_key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def _fmt_t(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def media_url(audio: str, start: float, end: float) -> str:
    return f"{quote(audio, safe='/:')}#t={_fmt_t(start)},{_fmt_t(end)}"


def pack_words(segment) -> str:
    """Words and their times, small: times are centiseconds, each a delta from the previous boundary."""
    words = [(w.word.strip(), w) for w in segment.words]
    words = [(text, w) for text, w in words if text]
    if not words:
        return json.dumps([segment.text.split(), None], ensure_ascii=False, separators=(",", ":"))
    previous = round(segment.start * 100)
    deltas = []
    for _, w in words:
        for t in (w.start, w.end):
            cs = round(t * 100)
            deltas.append(cs - previous)
            previous = cs
    return json.dumps([[t for t, _ in words], deltas], ensure_ascii=False, separators=(",", ":"))


def unpack_words(packed: str, segment_start: float) -> tuple[list[str], list[tuple[float, float]] | None]:
    words, deltas = json.loads(packed)
    if deltas is None:
        return words, None
    cs, bounds = round(segment_start * 100), []
    for d in deltas:
        cs += d
        bounds.append(cs / 100)
    return words, list(zip(bounds[0::2], bounds[1::2]))
