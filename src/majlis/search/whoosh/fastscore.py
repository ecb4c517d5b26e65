"""Whoosh's BM25F ranking, with less Python per scored document.

Whoosh scores a match through a generator, a collector, a scorer and four layers of calls for the
document's field length: several microseconds a document, so a word said in ten thousand segments took
tens of milliseconds however few hits are shown (BENCHMARKS.md, section 3). Shortcuts, each giving
whoosh's own hits, order and scores (tests/test_index.py and tests/test_phrase.py compare them):

- `Weighting`: BM25F whose scorer reads field lengths from a table decoded once per segment;
- `top_term`: the best N segments for a one-word query, reading whoosh's posting blocks directly and
  scoring them in one loop (skipping blocks that cannot reach the current top N, as whoosh does), or
  with numpy for a word in thousands of segments;
- `Block`: a posting block's documents and weights without unpickling its values (positions), which
  cost most of whoosh's decoding; phrase.py reads phrases with it.

All read whoosh internals (whoosh 2.7's W3 codec); anything unexpected falls back to whoosh's own path.
"""

from __future__ import annotations

import zlib
from heapq import heappush, heapreplace
from itertools import accumulate
from pickle import loads

from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher
from whoosh.reading import TermNotFound
from whoosh.scoring import BM25F, BM25FScorer
from whoosh.util.numeric import byte_to_length

# Decoding a segment's table costs about what whoosh's lookup costs for 1/40 of its documents, once; in a
# long-lived process (the web app) it then serves every later query. Only words in under 1/TABLE_SHARE of
# the documents keep whoosh's lookup, so that a one-off `majlis search` for a rare word does not pay for it.
TABLE_SHARE = 256
# A word in this many documents of a segment or more is scored with numpy, when the caller allows it (see
# Index.search: importing numpy takes ~0.1 s, more than it saves a process that searches once).
NUMPY_FROM = 2_000
_BYTE_LENGTH = [byte_to_length(b) or 1 for b in range(256)]  # 1: whoosh's default for "no length"


# A whoosh segment's length table never changes (deletions leave it as it is), so decoded tables are shared
# by every reader of the segment: the searchers of the web app's pool, and the new searcher each commit
# brings, decode only the segments they have not seen.
_SHARED: dict[tuple, object] = {}
_SHARED_MAX = 512


def _shared_key(reader, kind: str, fieldname: str) -> tuple | None:
    segid = getattr(reader, "_segid", None)
    if segid is None:
        return None
    return (getattr(getattr(reader, "_storage", None), "folder", None), segid, reader.doc_count_all(), kind,
            fieldname)


def _shared(reader, kind: str, fieldname: str, make):
    cache = reader.__dict__.setdefault(f"_majlis_{kind}", {})
    if fieldname not in cache:
        key = _shared_key(reader, kind, fieldname)
        value = _SHARED.get(key) if key is not None else None
        if value is None:
            value = make()
            if key is not None and value is not None:
                if len(_SHARED) >= _SHARED_MAX:
                    _SHARED.clear()
                _SHARED[key] = value
        cache[fieldname] = value
    return cache[fieldname]


def lengths(reader, fieldname: str) -> list[int] | None:
    """Every document's length of `fieldname` in one whoosh segment, or None if it cannot be read so."""
    def make():
        try:
            column = reader._perdoc._cached_reader(f"_{fieldname}_len", LENGTHS_COLUMN)
            if column is not None and column._fixedlen == 1:
                raw = column._dbfile.get(column._basepos, column._count)
                return [_BYTE_LENGTH[b] for b in raw] + [1] * (reader.doc_count_all() - len(raw))
        except (AttributeError, TypeError):
            pass
        return None

    return _shared(reader, "lengths", fieldname, make)


def lengths_array(reader, fieldname: str):
    """lengths() as a numpy array (numpy is imported only by the callers that need it)."""
    import numpy as np

    return _shared(reader, "lengths_np", fieldname,
                   lambda: np.array(lengths(reader, fieldname), dtype=np.float64))


def _length_lookup(reader, fieldname: str, btext: bytes, scorer):
    if reader.doc_frequency(fieldname, btext) * TABLE_SHARE >= reader.doc_count_all():
        table = lengths(reader, fieldname)
        if table is not None:
            return table.__getitem__
    return scorer.dfl


def term_postings(reader, fieldname: str, btext: bytes, fmt):
    """(matcher, document frequency) of a term in one whoosh segment, or None if the segment lacks it.
    One look-up of the term's info (`in`, doc_frequency() and matcher() each make their own: at 20
    segments that was ~1 ms a word)."""
    terms = getattr(reader, "_terms", None)
    if terms is None:  # whoosh's EmptyReader (an index created and never written): no terms at all
        return None
    try:
        info = terms.term_info(fieldname, btext)
    except TermNotFound:
        return None
    return terms._codec.postings_reader(terms._postfile, info, fmt, term=(fieldname, btext)), info.doc_frequency()


def bm25_params(searcher, fieldname: str, btext: bytes) -> tuple[float, float, float, float]:
    """(idf, average field length, B, K1) as whoosh's BM25FScorer takes them from the top-level searcher.
    The average is kept on the searcher: whoosh sums it over every segment for every term of every segment."""
    w = searcher.weighting
    cache = searcher.__dict__.setdefault("_majlis_avgfl", {})
    if fieldname not in cache:
        cache[fieldname] = searcher.avg_field_length(fieldname) or 1
    return searcher.idf(fieldname, btext), cache[fieldname], w._field_B.get(fieldname, w.B), w.K1


class Weighting(BM25F):
    """BM25F with field lengths from a table (see module doc)."""

    def scorer(self, searcher, fieldname, text, qf=1):
        scorer = super().scorer(searcher, fieldname, text, qf=qf)
        if isinstance(scorer, BM25FScorer):
            scorer.dfl = _length_lookup(searcher.reader(), fieldname, text, scorer)
        return scorer


# A block is a zlib-compressed pickle (protocol 2) of (id deltas, weights, values). Protocol 2 writes each
# value (bytes) as a call _codecs.encode(text, "latin1"): unpickling a whole block of 128 postings took
# ~110 us, most of it those calls, while a search needs the values (positions) of few of its documents, or
# none. So the pickle is cut where the values start, just before the first call's GLOBAL opcode (whose
# 16 bytes cannot occur in the ids and weights before it, all short opcodes with at most 8 bytes of
# argument): ids and weights come from the part before, and only that part is decompressed (a quarter of
# the block); the values only when asked for, with slice(text, "latin1") called instead of the encoder, so
# each text stays as it is until `value_bytes`. A block that does not look like this is read whole, as
# whoosh reads it.
_ENCODE = b"c_codecs\nencode\n"
_SLICE = b"c__builtin__\nslice\n"
_FIRST = 2048  # decompressed bytes first asked for: 128 ids and weights take ~1,500


class Block:
    """One decoded posting block: docnums and weights as whoosh's _read_ids and _read_weights give them,
    values (as whoosh's _read_values, or slices: see value_bytes) on first use."""

    __slots__ = ("ids", "weights", "_raw", "_cut", "_rest", "_values")

    def __init__(self, raw: bytes, n: int, compressed: bool, byteids: bool = False):
        """`raw`: the block's data as stored (after its header); `n`: its number of postings."""
        self._rest = None
        if compressed:
            inflate = zlib.decompressobj()
            part = inflate.decompress(raw, _FIRST)
            while part.find(_ENCODE) < 0 and inflate.unconsumed_tail:
                part += inflate.decompress(inflate.unconsumed_tail, _FIRST)
            raw, self._rest = part, inflate
        cut = raw.find(_ENCODE) - 1
        ids = weights = self._values = None
        if cut > 0 and raw[cut] == 0x28:  # "(": the MARK of the values tuple
            try:
                ids, weights = loads(raw[:cut] + b"\x86.")  # TUPLE2, STOP: (ids, weights)
            except Exception:  # not the layout described above: read it whole below
                ids = None
        self._raw, self._cut = raw, cut
        if ids is None or len(ids) != n:
            ids, weights, self._values = loads(self._whole())
        if not byteids:
            ids = list(accumulate(ids))
        if weights is None:
            weights = (1.0,) * n
        elif isinstance(weights, float):
            weights = (weights,) * n
        self.ids, self.weights = ids, weights

    def _whole(self) -> bytes:
        if self._rest is not None:
            self._raw += self._rest.decompress(self._rest.unconsumed_tail) + self._rest.flush()
            self._rest = None
        return self._raw

    @property
    def values(self):
        if self._values is None:
            raw = self._whole()
            # Two placeholders for ids and weights, then the values tuple and the closing TUPLE3.
            _, _, values = loads(b"\x80\x02NN" + raw[self._cut:].replace(_ENCODE, _SLICE, 1))
            if len(values) != len(self.ids):
                raise ValueError("unexpected posting block layout")
            self._values = values
        return self._values


def current_block(matcher: W3LeafMatcher) -> Block:
    """The block a whoosh posting matcher is on."""
    m = matcher
    raw = m._postfile.get(m._dataoffset, m._nextoffset - m._dataoffset)
    return Block(raw, m._blocklength, bool(m._compression), m._byteids)


def value_bytes(value) -> bytes:
    return value.start.encode("latin-1") if type(value) is slice else value


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


def top_term(searcher, fieldname: str, text: str, limit: int, allow: set[int] | None = None, *,
             use_numpy: bool = True, check=None):
    """[(score, docnum)] of the `limit` best documents for one term, best first, as whoosh's TopCollector
    ranks them; None when this searcher is not one this shortcut knows how to read. `check()` is called
    per posting block (it raises to stop the search)."""
    weighting = searcher.weighting
    field = searcher.schema[fieldname]
    if type(weighting) not in (BM25F, Weighting) or not field.scorable:
        return None
    btext = field.to_bytes(text)
    items: list[tuple[float, int]] = []
    idf = avgfl = b = k1 = None
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        found = term_postings(reader, fieldname, btext, field.format)
        if found is None:
            continue
        matcher, df = found
        if idf is None:
            idf, avgfl, b, k1 = bm25_params(searcher, fieldname, btext)
        if use_numpy and df >= NUMPY_FROM and isinstance(matcher, W3LeafMatcher) and lengths(reader, fieldname) is not None:
            _top_numpy(items, limit, matcher, reader, fieldname, offset, (idf, avgfl, b, k1), allow)
            continue
        length = None
        if df * TABLE_SHARE >= reader.doc_count_all():
            table = lengths(reader, fieldname)
            length = table.__getitem__ if table is not None else None
        if length is None:  # what BM25FScorer.dfl does
            def length(docnum, reader=reader):
                return reader.doc_field_length(docnum, fieldname, 1)
        deleted = reader.deleted_docs_set
        for block in _blocks(matcher):
            if check is not None:
                check()
            if isinstance(block, tuple):
                ids, weights = block
            else:
                if len(items) == limit:  # whoosh's block quality: the best weight at the shortest length
                    tf, fl = block._maxweight, block._minlength
                    if idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl))) <= items[0][0]:
                        continue  # nothing in this block can enter the top N: not even decoded
                decoded = current_block(block)
                ids, weights = decoded.ids, decoded.weights
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


def _top_numpy(items, limit, matcher, reader, fieldname, offset, bm25, allow) -> None:
    """top_term's loop for a long posting list: every block's ids and weights, scored at once by numpy
    with the same float operations in the same order, into the same heap."""
    import numpy as np

    ids, weights = [], []
    while matcher.is_active():
        block = current_block(matcher)
        ids.extend(block.ids)
        weights.extend(block.weights)
        matcher._next_block()
    docs = np.array(ids, dtype=np.int64)
    tf = np.array(weights, dtype=np.float64)
    keep = np.ones(len(docs), dtype=bool)
    if reader.deleted_docs_set:
        keep &= ~np.isin(docs, np.fromiter(reader.deleted_docs_set, dtype=np.int64))
    if allow is not None:
        keep &= np.isin(docs + offset, np.fromiter(allow, dtype=np.int64, count=len(allow)))
    docs, tf = docs[keep], tf[keep]
    idf, avgfl, b, k1 = bm25
    fl = lengths_array(reader, fieldname)[docs]
    scores = idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))
    best = np.lexsort((docs, -scores))[:limit]  # the segment's own top N: only these can enter
    for score, doc in zip(scores[best].tolist(), docs[best].tolist()):
        entry = (score, -(offset + doc))
        if len(items) < limit:
            heappush(items, entry)
        elif entry > items[0]:
            heapreplace(items, entry)
