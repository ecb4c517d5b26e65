"""Whoosh's BM25F ranking, with less Python per scored document.

Whoosh scores a match through a generator, a collector, a scorer and four layers of calls for the
document's field length: several microseconds a document, so a word said in ten thousand segments took
tens of milliseconds however few hits are shown (BENCHMARKS.md, section 3). Two shortcuts, each giving
whoosh's own hits, order and scores (tests/test_index.py compares them):

- `Weighting`: BM25F whose scorer reads field lengths from a table decoded once per segment;
- `top_term`: the best N segments for a one-word query, reading whoosh's posting blocks directly and
  scoring them in one loop (skipping blocks that cannot reach the current top N, as whoosh does).

Both read whoosh internals (whoosh 2.7's W3 codec); anything unexpected falls back to whoosh's own path.
"""

from __future__ import annotations

from heapq import heappush, heapreplace

from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher
from whoosh.scoring import BM25F, BM25FScorer
from whoosh.util.numeric import byte_to_length

# Decoding a segment's table costs about what whoosh's lookup costs for 1/40 of its documents, once; in a
# long-lived process (the web app) it then serves every later query. Only words in under 1/TABLE_SHARE of
# the documents keep whoosh's lookup, so that a one-off `majlis search` for a rare word does not pay for it.
TABLE_SHARE = 256
_BYTE_LENGTH = [byte_to_length(b) or 1 for b in range(256)]  # 1: whoosh's default for "no length"


def lengths(reader, fieldname: str) -> list[int] | None:
    """Every document's length of `fieldname` in one whoosh segment, or None if it cannot be read so."""
    cache = reader.__dict__.setdefault("_majlis_lengths", {})
    if fieldname not in cache:
        table = None
        try:
            column = reader._perdoc._cached_reader(f"_{fieldname}_len", LENGTHS_COLUMN)
            if column is not None and column._fixedlen == 1:
                raw = column._dbfile.get(column._basepos, column._count)
                table = [_BYTE_LENGTH[b] for b in raw] + [1] * (reader.doc_count_all() - len(raw))
        except (AttributeError, TypeError):
            table = None
        cache[fieldname] = table
    return cache[fieldname]


def _length_lookup(reader, fieldname: str, btext: bytes, scorer):
    if reader.doc_frequency(fieldname, btext) * TABLE_SHARE >= reader.doc_count_all():
        table = lengths(reader, fieldname)
        if table is not None:
            return table.__getitem__
    return scorer.dfl


class Weighting(BM25F):
    """BM25F with field lengths from a table (see module doc)."""

    def scorer(self, searcher, fieldname, text, qf=1):
        scorer = super().scorer(searcher, fieldname, text, qf=qf)
        if isinstance(scorer, BM25FScorer):
            scorer.dfl = _length_lookup(searcher.reader(), fieldname, text, scorer)
        return scorer


def _blocks(matcher):
    """Whoosh's posting blocks one by one (undecoded), or one (docnums, weights) for an inline list."""
    if isinstance(matcher, W3LeafMatcher):
        while matcher.is_active():
            yield matcher  # the caller decodes the block, or skips it
            matcher._next_block()
        return
    ids, weights = [], []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    yield (ids, weights)


def top_term(searcher, fieldname: str, text: str, limit: int, allow: set[int] | None = None):
    """[(score, docnum)] of the `limit` best documents for one term, best first, as whoosh's TopCollector
    ranks them; None when this searcher is not one this shortcut knows how to read."""
    weighting = searcher.weighting
    if type(weighting) not in (BM25F, Weighting):
        return None
    field = searcher.schema[fieldname]
    btext = field.to_bytes(text)
    items: list[tuple[float, int]] = []
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        if (fieldname, btext) not in reader:
            continue
        scorer = BM25F.scorer(weighting, sub, fieldname, btext)
        if not isinstance(scorer, BM25FScorer):
            return None
        length = _length_lookup(reader, fieldname, btext, scorer)
        idf, avgfl, b, k1 = scorer.idf, scorer.avgfl, scorer.B, scorer.K1
        deleted = reader.deleted_docs_set
        matcher = reader._terms.matcher(fieldname, btext, field.format, scorer=scorer)
        for block in _blocks(matcher):
            if isinstance(block, tuple):
                ids, weights = block
            else:
                if len(items) == limit and scorer.block_quality(block) <= items[0][0]:
                    continue  # nothing in this block can enter the top N: not even decoded
                block._read_ids()
                block._read_weights()
                ids, weights = block._ids, block._weights
            for sub_docnum, tf in zip(ids, weights):
                if deleted and sub_docnum in deleted:
                    continue
                docnum = offset + sub_docnum
                if allow is not None and docnum not in allow:
                    continue
                # whoosh.scoring.bm25, term for term: the same float as whoosh's
                fl = length(sub_docnum)
                score = idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))
                if len(items) < limit:
                    heappush(items, (score, -docnum))
                elif score > items[0][0]:
                    heapreplace(items, (score, -docnum))
    return [(score, -neg) for score, neg in sorted(items, reverse=True)]
