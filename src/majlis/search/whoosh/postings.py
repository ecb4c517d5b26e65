"""One word's posting list in one whoosh segment, read from whoosh 2.7's W3 format directly: the list in one
piece, block headers parsed once (and kept for the words searched most recently), each block decoded only
when something in it is needed (fastscore.Block). phrase.py walks phrases with it."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from pickle import dumps, loads
from struct import Struct
from weakref import WeakKeyDictionary

from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3LeafMatcher, W3TermsReader
from whoosh.reading import TermNotFound

from .fastscore import Block

_INT = Struct("!i")
# Block headers parsed, per posting file, for the words searched most recently: the commonest words come
# back in query after query, and parsing "the"'s 1,500 headers took several milliseconds each time.
HEADS_KEPT = 256
_HEADS: WeakKeyDictionary = WeakKeyDictionary()


def readable(reader) -> bool:
    """Whether find() can read this whoosh segment's terms (whoosh 2.7's W3 codec)."""
    return isinstance(getattr(reader, "_terms", None), W3TermsReader)


def find(reader, fieldname: str, btext: bytes, fmt, bm25=None):
    """A word's postings in one whoosh segment (`readable`): a TermPostings; (ids, weights, values) for a
    list so short that whoosh keeps it inside the term's entry; None where the segment lacks the word.
    One look-up, and nothing else read: whoosh's matcher() looks the term up once more for `in` and
    doc_frequency(), and reads the first block's header as it starts (for a three-word phrase at 20
    segments, building those matchers took 3.6 ms under cProfile)."""
    terms = reader._terms
    try:
        info = terms.term_info(fieldname, btext)
    except TermNotFound:
        return None
    if info.is_inlined():
        return info.inlined_postings()
    offset, length = info.extent()
    return TermPostings(btext, terms._postfile, offset, length, fmt, info.doc_frequency(), bm25)


class TermPostings:
    """One word's postings in one whoosh segment: the posting list read in one piece, each block decoded
    when first needed (fastscore.Block). `bm25`: what score() needs (fastscore.bm25_params), where it is
    called."""

    def __init__(self, btext: bytes, postfile, offset: int, length, fmt, df: int,
                 bm25: tuple[float, float, float, float] | None = None):
        self.btext, self.df, self.bm25 = btext, df, bm25
        self._postfile, self._offset, self._fmt = postfile, offset, fmt
        self._length = length[0] if isinstance(length, tuple) else length  # W3TermInfo reads it as a 1-tuple
        self._heads: tuple[list[tuple[int, int, int, bool]], list[int], list[float]] | None = None
        self._data = b""
        self._blocks: dict[int, Block] = {}
        # read_all's documents in order: their weights, and where each one's value is
        self.ids: list[int] = []
        self.weights: list[float] = []
        self._rows: list[int] | None = None  # row in the unfiltered list, when some were left out
        self._starts: list[int] = []  # first unfiltered row of each block read
        self._read: list[Block] = []

    def score(self, tf: float, fl: float) -> float:
        idf, avgfl, b, k1 = self.bm25  # whoosh.scoring.bm25, term for term: the same float
        return idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))

    def heads(self) -> tuple[list[tuple[int, int, int, bool]], list[int], list[float]]:
        """Each block's (data start, data end, postings, compressed), last document and best weight, from
        the block headers alone. The posting list is read in one piece (one read, not one per block);
        a block is its length (negative for the last one), a pickled header, then its data."""
        if self._heads is None:
            base = self._offset
            self._data = data = self._postfile.get(base, self._length)
            kept = _HEADS.setdefault(self._postfile, {})
            self._heads = kept.get(base)
            if self._heads is not None:
                return self._heads
            if data[:4] != WHOOSH3_HEADER_MAGIC:
                W3LeafMatcher(self._postfile, base, self._length, self._fmt)  # raises whoosh's own error
            at = 4
            where, maxids, maxweights = [], [], []
            while True:
                length = _INT.unpack_from(data, at)[0]
                end = at + 4 + abs(length)
                try:
                    info = loads(data[at + 4:end])  # the header; unpickling stops at its end
                    header = dumps(info, 2)
                except Exception:  # not a header as whoosh 2.7 writes it: whoosh reads it below
                    info, header = None, b""
                if info is not None and data[at + 4:at + 4 + len(header)] == header:
                    start = at + 4 + len(header)
                else:  # not written as we would write it: let whoosh find where the data starts
                    m = W3LeafMatcher(self._postfile, base, self._length, self._fmt)
                    m._goto(base + at)
                    start = m._dataoffset - base
                    info = (m._blocklength, m._maxid, m._maxweight, m._compression)
                n, maxid, maxweight, compression = info[:4]
                where.append((start, end, n, bool(compression)))
                maxids.append(maxid)
                maxweights.append(maxweight)
                if length < 0:
                    break
                at = end
            self._heads = (where, maxids, maxweights)
            while kept and len(kept) >= HEADS_KEPT:  # the oldest go (another Index in another thread may race)
                kept.pop(next(iter(kept), None), None)
            kept[base] = self._heads
        return self._heads

    def block(self, k: int) -> Block:
        found = self._blocks.get(k)
        if found is None:
            start, end, n, compressed = self.heads()[0][k]
            found = self._blocks[k] = Block(self._data[start:end], n, compressed)
        return found

    def posting(self, doc: int) -> tuple[Block, int] | None:
        """The block holding `doc` and its row there, or None; only that block is decoded."""
        maxids = self.heads()[1]
        k = bisect_left(maxids, doc)
        if k == len(maxids):
            return None
        block = self.block(k)
        j = bisect_left(block.ids, doc)
        return (block, j) if j < len(block.ids) and block.ids[j] == doc else None

    def postings(self, docs: list[int]) -> list[tuple[Block, int] | None]:
        """posting() for each of `docs` (sorted), each block that can hold one decoded once."""
        maxids = self.heads()[1]
        out, k = [], -1
        for d in docs:
            if k < 0 or d > maxids[k]:
                k = bisect_left(maxids, d, max(k, 0))
                if k == len(maxids):
                    out.extend([None] * (len(docs) - len(out)))
                    break
                block = self.block(k)
                ids, n = block.ids, len(block.ids)
            j = bisect_left(ids, d)
            out.append((block, j) if j < n and ids[j] == d else None)
        return out

    def read_all(self, keep) -> None:
        """Every posting's document and weight (values stay in their blocks until asked for)."""
        row = 0
        if keep is not None:
            self._rows = []
        for k in range(len(self.heads()[0])):
            block = self.block(k)
            self._starts.append(row)
            self._read.append(block)
            if keep is None:
                self.ids.extend(block.ids)
                self.weights.extend(block.weights)
            else:
                for j, (d, w) in enumerate(zip(block.ids, block.weights)):
                    if keep(d):
                        self.ids.append(d)
                        self.weights.append(w)
                        self._rows.append(row + j)
            row += len(block.ids)

    def value(self, i: int):
        """The value of read_all's i-th document."""
        row = i if self._rows is None else self._rows[i]
        k = bisect_right(self._starts, row) - 1
        return self._read[k].values[row - self._starts[k]]
