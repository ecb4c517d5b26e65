"""Whoosh's phrase query, answered from the postings with less Python per document.

Whoosh answers "w1 w2" with a tree of intersection matchers: every posting of every word is stepped
through with skip_to() calls, several Python calls deep, positions are decoded and compared through span
objects. At 1,000 h a phrase took ~230 ms, and one with a very common word ("of the", or "it's", which the
parser makes a phrase) up to a second (BENCHMARKS.md, section 3). Here:

1. in each whoosh segment the rarer words' posting lists are intersected, rarest first, decoding only
   the blocks that can hold a document still in the running (found from the block headers);
2. of the commonest word ("the", "of") only the block headers are read: a header bounds what the word
   can add to the score of a document in its block (the block's best weight, at the document's own
   length), so every candidate gets an upper bound of its score without that word's postings;
3. the candidates of all segments are taken best bound first; for each, the commonest word's block gives
   the exact score, and only a candidate that would enter the top N has its positions decoded and the
   phrase checked; this stops when no candidate left can enter the top N.

That still left a tail ("Afghanistan and", "it's": ~200 ms at 1,000 h): a topic word beside a common one
has hundreds of candidates that hold both words but not the phrase, and only positions, pickled inside
whoosh's blocks, rule them out. So the index also holds every pair of adjacent words as one term
(`Pairs`, the `pairs` field of schema.SCHEMA), and an exact phrase takes its candidates from the pairs'
posting lists: for two words these are exactly the documents holding the phrase, and no positions are
read at all; for more, they are few. Then only the rarest word is read for every candidate, and every
other word is bounded from its headers as in 2; a candidate looked at reads those words rarest first, and
is given up as soon as the weights read so far put it out of the top N. A candidate whose inner words are
each said once holds the phrase (each pair must use that one occurrence): its positions are not read.
An index written before that field keeps the path above.

A match scores as whoosh scores it: the BM25F score of each of the phrase's words (a repeated word counts
each time), added in the order of whoosh's binary tree of intersection matchers. Hits, order and scores
are whoosh's own (tests/test_phrase.py compares them); anything this does not know how to read returns
None, and the caller runs whoosh's query instead.
"""

from __future__ import annotations

from bisect import bisect_left
from heapq import heappush, heapreplace
from itertools import accumulate
from pickle import loads

from whoosh.analysis import Filter
from whoosh.formats import Positions
from whoosh.scoring import BM25F

from .fastscore import Weighting, bm25_params, lengths, lengths_array, value_bytes
from .postings import TermPostings, find, readable

# A bound and an exact score are different float expressions: a candidate is given up only when its bound
# is below the N-th best score by more than rounding could explain.
_MARGIN = 1e-9
# From this many candidates on, their bounds are computed and sorted with numpy when the caller allows it
# (see Index.search: importing numpy takes ~0.1 s); below it plain Python is as quick.
NUMPY_FROM = 1_000
PAIRS = "pairs"  # the field of word pairs (schema.SCHEMA)


class Pairs(Filter):
    """Each word joined to the word after it ("sharia law"), as the terms of the pairs field. Whoosh
    pickles the schema into the index, so this class keeps its name and module."""

    def __call__(self, tokens):
        previous = None
        for t in tokens:
            if t.stopped:
                continue
            text = t.text
            if previous is not None:
                t.text = pair(previous, text)
                yield t
            previous = text


# The module whoosh finds it under when it unpickles an index's schema: the one it was first written under
# (majlis/phrase.py re-exports it), so indexes written before and after the move are the same bytes and read
# the same with either code.
Pairs.__module__ = "majlis.phrase"


def pair(first: str, second: str) -> str:
    return f"{first} {second}"  # analysed words hold no spaces, so a pair reads back one way only


def tree_sum(scores: list[float]) -> float:
    """The sum in whoosh's order: make_binary_tree(IntersectionMatcher, ...) adds a + b at every node."""
    if len(scores) == 1:
        return scores[0]
    half = len(scores) // 2
    return tree_sum(scores[:half]) + tree_sum(scores[half:])


def has_phrase(plists: list[list[int]], slop: int) -> bool:
    """Whether the positions (one sorted list per phrase word) hold the words in order, each 1 to `slop`
    positions after the end of the words before it: whoosh's SpanNear2(ordered=True, mindist=1)."""
    if slop == 1:
        rest = [set(p) for p in plists[1:]]
        return any(all(p + k in s for k, s in enumerate(rest, 1)) for p in plists[0])
    spans = {(p, p) for p in plists[0]}
    for plist in plists[1:]:
        spans = {(a, b) for a, e in spans for b in plist if e < b <= e + slop}
        if not spans:
            return False
    return bool(spans)


def _maybe(known: list[tuple[int, list[int]]]) -> bool:
    """Whether an exact phrase (slop 1) can be there, judging by some of its words: (index in the phrase,
    positions) of each."""
    (i0, first), *rest = known
    rest = [(i - i0, set(p)) for i, p in rest]
    return any(all(p + k in s for k, s in rest) for p in first)


def _decoder(fmt):
    if type(fmt) is Positions:
        def decode(v) -> list[int]:  # Positions.decode_positions without its per-call overhead
            v = value_bytes(v)
            return list(accumulate(loads(v[4:] if v.endswith(b".") else v[4:] + b".")))
        return decode
    return lambda v: fmt.decode_positions(value_bytes(v))


def _pair_docs(reader, field: str, btexts: list[bytes], keep) -> list[int]:
    """The documents of one whoosh segment holding every one of these pairs, sorted ([] if one is absent)."""
    fmt, lists = reader.schema[field].format, []
    for bt in set(btexts):
        found = find(reader, field, bt, fmt)
        if found is None:
            return []
        lists.append((found.df, bt, found) if isinstance(found, TermPostings) else (len(found[0]), bt, found[0]))
    docs = None
    for _, _, term in sorted(lists, key=lambda x: x[:2]):  # the shortest list first
        if not isinstance(term, TermPostings):  # kept inside the term's entry (whoosh inlines one posting)
            ids = [d for d in term if docs is not None or keep is None or keep(d)]
        elif docs is not None and len(docs) * 8 < term.df:  # few candidates left: only their blocks
            ids = [d for d, p in zip(docs, term.postings(docs)) if p is not None]
        else:
            term.read_all(keep if docs is None else None)
            ids = term.ids
        docs = ids if docs is None else sorted(set(docs).intersection(ids))
        if not docs:
            break
    return docs


class _Segment:
    """One whoosh segment's candidates: the documents holding every pair of the phrase, or (an index without
    pairs) every phrase word but the commonest one."""

    def __init__(self, searcher, sub, offset, fieldname, btexts, fmt, allow,
                 pairs: tuple[str, list[bytes]] | None):
        reader = sub.reader()
        self.offset = offset
        self.docs: list[int] = []
        self.ok = True
        # Candidates from the pairs of a two-word phrase are the documents holding it: no positions needed.
        self.certain = pairs is not None and len(btexts) == 2
        # Longer: a candidate holding each inner word once holds the phrase too, since every pair around
        # that word must use its one occurrence (a weight is occurrences x field boost, so only at boost 1).
        self.inner = btexts[1:-1] if pairs is not None and fmt.field_boost == 1.0 else None
        self.terms: dict[bytes, TermPostings] = {}
        if not readable(reader):
            self.ok = False
            return
        for bt in btexts:
            if bt not in self.terms:
                found = find(reader, fieldname, bt, fmt, bm25_params(searcher, fieldname, bt))
                if found is None:
                    return  # as Phrase.matcher: a word this segment lacks, no match in it
                if not isinstance(found, TermPostings):  # whoosh reads a one-posting word better
                    self.ok = False
                    return
                self.terms[bt] = found
        self.table = lengths(reader, fieldname)
        if self.table is None:
            self.ok = False
            return
        self.reader, self.fieldname = reader, fieldname
        deleted = reader.deleted_docs_set
        keep = None
        if deleted or allow is not None:
            def keep(doc):
                return not (deleted and doc in deleted) and (allow is None or offset + doc in allow)
        order = sorted(self.terms.values(), key=lambda t: t.df)
        self.rows = {}  # each word read ahead: the candidate's row in it
        if pairs is not None:
            # The rarest word weighs most in a score: it is read for every candidate, so that the bounds
            # stay tight; the commoner ones count as their blocks' best weights until a candidate is looked at.
            docs = _pair_docs(reader, *pairs, keep)
            order, self.bounded = order[:1], order[1:]
        else:
            self.bounded = [order.pop()] if len(order) > 1 else []
            first = order.pop(0)
            first.read_all(keep)
            docs = first.ids
            self.rows[first.btext] = list(range(len(docs)))
        for term in order:
            found = term.postings(docs)
            keep_at = [i for i, p in enumerate(found) if p is not None]
            docs = [docs[i] for i in keep_at]
            self.rows = {bt: [rows[i] for i in keep_at] for bt, rows in self.rows.items()}
            self.rows[term.btext] = [found[i] for i in keep_at]  # (block, row) for the words read by block
        self.docs = docs

    def tf(self, bt: bytes, i: int) -> float:
        r = self.rows[bt][i]
        return self.terms[bt].weights[r] if type(r) is int else r[0].weights[r[1]]

    def value(self, bt: bytes, i: int):
        r = self.rows[bt][i]
        return self.terms[bt].value(r) if type(r) is int else r[0].values[r[1]]

    def bounds(self, btexts, np=None) -> list:
        """Each candidate's score bound; -1.0 where a bounded word's last block ends before it."""
        heads = {t.btext: t.heads()[1:] for t in self.bounded}
        if np is None:
            out = []
            for i, doc in enumerate(self.docs):
                fl, total = self.table[doc], 0.0
                for bt in btexts:
                    if bt in heads:
                        maxids, maxweights = heads[bt]
                        k = bisect_left(maxids, doc)
                        if k == len(maxids):
                            total = -1.0
                            break
                        total += self.terms[bt].score(maxweights[k], fl)
                    else:
                        total += self.terms[bt].score(self.tf(bt, i), fl)
                out.append(total)
            return out
        d = np.array(self.docs, dtype=np.int64)
        fl = lengths_array(self.reader, self.fieldname)[d]
        total = np.zeros(len(d))
        past = np.zeros(len(d), dtype=bool)
        for bt in btexts:
            t = self.terms[bt]
            if bt in heads:
                maxids, maxweights = heads[bt]
                k = np.searchsorted(np.array(maxids, dtype=np.int64), d, side="left")
                tf = np.array(maxweights + [0.0])[k]
                past |= k == len(maxids)
            elif self.rows[bt] and type(self.rows[bt][0]) is int:
                tf = np.array(t.weights, dtype=np.float64)[np.array(self.rows[bt], dtype=np.int64)]
            else:
                tf = np.array([self.tf(bt, i) for i in range(len(d))], dtype=np.float64)
            idf, avgfl, b, k1 = t.bm25
            total += idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))
        total[past] = -1.0
        return total


def top_phrase(searcher, fieldname: str, words, slop: int, limit: int, allow: set[int] | None = None, *,
               use_numpy: bool = True, pairs_field: str | None = None, check=None):
    """[(score, docnum)] of the `limit` best documents holding the phrase, best first, as whoosh's
    TopCollector ranks Phrase(fieldname, words, slop); None when this searcher is not one this can read.
    `pairs_field`: the field holding `fieldname`'s word pairs (Pairs), where the index has one. `check()`
    is called per whoosh segment and per candidate looked at (it raises to stop the search)."""
    if type(searcher.weighting) not in (BM25F, Weighting) or slop < 1 or len(words) < 2:
        return None
    field = searcher.schema[fieldname]
    fmt = field.format
    if not fmt or not fmt.supports("positions") or not field.scorable or (fmt.fixed_value_size() or -1) >= 0:
        return None
    try:
        btexts = [field.to_bytes(w) for w in words]
    except ValueError:
        return None
    pairs = None
    if slop == 1 and pairs_field is not None and pairs_field in searcher.schema:
        to_bytes = searcher.schema[pairs_field].to_bytes
        pairs = (pairs_field, [to_bytes(pair(a, b)) for a, b in zip(words, words[1:])])
    segments = []
    check = check or _nothing
    for sub, offset in searcher.leaf_searchers():
        check()
        seg = _Segment(searcher, sub, offset, fieldname, btexts, fmt, allow, pairs)
        if not seg.ok:
            return None
        if seg.docs:
            segments.append(seg)
    items: list[tuple[float, int]] = []
    decode = _decoder(fmt)
    for bound, seg, i in _best_first(segments, btexts, use_numpy):
        if len(items) == limit and bound * (1 + _MARGIN) + _MARGIN < items[0][0]:
            break  # best bound first: nothing after this can enter the top N either
        check()
        _check(items, limit, seg, i, btexts, slop, decode)
    return [(score, -neg) for score, neg in sorted(items, reverse=True)]


def _nothing() -> None:
    pass


def _best_first(segments: list[_Segment], btexts, use_numpy: bool):
    """(bound, segment, candidate) of every candidate, highest bound first, then lowest docnum."""
    total = sum(len(s.docs) for s in segments)
    if not total:
        return
    if total < NUMPY_FROM or not use_numpy:
        cands = [(b, s.offset + d, s, i) for s in segments
                 for i, (d, b) in enumerate(zip(s.docs, s.bounds(btexts))) if b >= 0]
        cands.sort(key=lambda c: (-c[0], c[1]))
        for b, _, s, i in cands:
            yield b, s, i
        return
    import numpy as np

    bounds = np.concatenate([s.bounds(btexts, np) for s in segments])
    docnums = np.concatenate([np.array(s.docs, dtype=np.int64) + s.offset for s in segments])
    which = np.concatenate([np.full(len(s.docs), k) for k, s in enumerate(segments)])
    rows = np.concatenate([np.arange(len(s.docs)) for s in segments])
    order = np.lexsort((docnums, -bounds))
    for at in range(0, len(order), 256):  # the first few hundred usually settle it
        chunk = order[at:at + 256]
        for b, k, i in zip(bounds[chunk].tolist(), which[chunk].tolist(), rows[chunk].tolist()):
            if b < 0:
                return
            yield b, segments[k], i


def _check(items, limit, seg: _Segment, i: int, btexts, slop, decode) -> None:
    """Score candidate i of `seg` and, if it would enter the top N, check the phrase and put it there."""
    doc = seg.docs[i]
    plists = {}
    if seg.bounded and len(seg.rows) > 1 and slop == 1:
        plists = {bt: decode(seg.value(bt, i)) for bt in seg.rows}
        if not _maybe([(k, plists[bt]) for k, bt in enumerate(btexts) if bt in plists]):
            return  # the rarer words alone rule it out: the commonest word's block is not decoded
    fl = seg.table[doc]
    tf = {bt: seg.tf(bt, i) for bt in seg.rows}
    found = {}
    for k, term in enumerate(seg.bounded):  # rarest first: its weight may rule the candidate out already
        found[term.btext] = term.posting(doc)
        if found[term.btext] is None:
            return
        block, j = found[term.btext]
        tf[term.btext] = block.weights[j]
        if len(items) == limit and k + 1 < len(seg.bounded) and _below(seg, doc, btexts, tf, fl, items[0][0]):
            return
    entry = (tree_sum([seg.terms[bt].score(tf[bt], fl) for bt in btexts]), -(seg.offset + doc))
    if len(items) == limit and entry <= items[0]:
        return  # could not enter even with the phrase there: its positions are not read
    if not seg.certain and not (seg.inner and all(tf[bt] == 1.0 for bt in seg.inner)):
        if not plists:
            plists = {bt: decode(seg.value(bt, i)) for bt in seg.rows}
        # Rarest first, the commonest last: its block's positions cost the most to decode ("the" is said
        # several times in most segments), and the rarer words' positions often rule the phrase out without.
        for bt, (block, j) in found.items():
            if slop == 1 and len(plists) > 1 and not _maybe([(k, plists[w]) for k, w in enumerate(btexts)
                                                              if w in plists]):
                return
            plists[bt] = decode(block.values[j])
        if not has_phrase([plists[bt] for bt in btexts], slop):
            return
    if len(items) < limit:
        heappush(items, entry)
    else:
        heapreplace(items, entry)


def _below(seg: _Segment, doc: int, btexts, tf: dict, fl: float, best: float) -> bool:
    """Whether the candidate's bound, with the weights known so far, is below the N-th best score."""
    bound = 0.0
    for bt in btexts:
        w = tf.get(bt)
        if w is None:  # not read yet: the best weight of its block (the candidate's block exists: bounds())
            maxids, maxweights = seg.terms[bt].heads()[1:]
            w = maxweights[bisect_left(maxids, doc)]
        bound += seg.terms[bt].score(w, fl)
    return bound * (1 + _MARGIN) + _MARGIN < best
