"""majlis.phrase and fastscore.Block against whoosh itself, on real on-disk indexes: several whoosh segments,
deleted documents, posting lists many blocks long, phrases whose words repeat, speaker filters. Whoosh's
own query (what Index.search falls back to) is the reference for every hit, its order and its score."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import pytest
from whoosh.collectors import FilterCollector, TopCollector
from whoosh.query import Phrase, Term

import majlis.search.whoosh.fastscore as fs
import majlis.search.index as mi
import majlis.search.whoosh.phrase as ph
import majlis.search.whoosh.postings as postings
from majlis.search.index import Index, speaker_key
from majlis.search.query import parse_query
from majlis.types import Segment, Transcript
from test_index import timed_words, truth_transcript

# A small vocabulary drawn with Zipf weights: the first words are in most segments (posting lists of many
# 128-posting blocks, like "the" in a real archive), the last in few.
VOCAB = ("the of and a to in it s was that is Taliban group fighters state leader Uzbek Islamic movement "
         "north reported only just very said border riddle mystery wrapped prisoners").split()
WEIGHTS = [1 / (r + 1.5) for r in range(len(VOCAB))]
SPEAKERS = ("Tahir", "Pannier", "Mudaqiq", "Tolibov")


def episode(name: str, n: int, rng: random.Random) -> Transcript:
    segs, t = [], 0.0
    for i in range(n):
        words = rng.choices(VOCAB, WEIGHTS, k=rng.randint(3, 40))
        if rng.random() < 0.2:  # phrases whose words repeat, and words doubled in a row
            at = rng.randrange(len(words))
            words[at:at] = rng.choice([["a", "riddle", "wrapped", "in", "a", "mystery"], ["the", "the"],
                                       ["it", "s"], ["of", "the", "state", "of", "the"]])
        text = " ".join(words)
        segs.append(Segment(i, rng.choice(SPEAKERS), t, t + 10, text, timed_words(text, t, t + 10)))
        t += 11
    return Transcript(name, f"{name}.mp3", t, "en", {}, SPEAKERS, tuple(segs))


@pytest.fixture(scope="module", params=["pairs", "positions"])
def archive(request, tmp_path_factory) -> Index:
    """The same archive in today's schema (phrases found from the word pairs) and in one written before
    the pairs field (phrases found from word positions alone)."""
    rng = random.Random(5)
    path = tmp_path_factory.mktemp("phrase") / "index"
    if request.param == "positions":
        from whoosh import index as whoosh_index

        before = mi.SCHEMA.copy()
        before.remove(ph.PAIRS)
        path.mkdir()
        whoosh_index.create_in(str(path), before)
    ix = Index(path, create=True)
    assert (ph.PAIRS in ix._ix.schema) is (request.param == "pairs")
    episodes = [episode(f"ep{k}", 300, rng) for k in range(6)]
    ix.add(episodes[:2])
    ix.add(episodes[2:4])
    ix.add([truth_transcript()])
    ix.add(episodes[4:])
    ix.add([episode("ep1", 250, rng)])  # re-indexed: the first copy's documents are deleted, not merged away
    same = "the riddle of the state prisoners"  # hundreds of equal scores: ties decided by document number
    ix.add([said("ties", [same] * 400)])
    # The same again in a later segment, with a "the" said seven times in every block: there, the bounds of
    # the same documents are higher, so they are looked at first and must give way to the earlier ones.
    texts = [same if i % 7 else "the the the the the the the" for i in range(400)]
    ix.add([said("ties2", texts)])
    reader = ix._ix.reader()
    try:
        assert len(reader.leaf_readers()) >= 3, "the test needs several whoosh segments"
        assert any(r.has_deletions() for r, _ in reader.leaf_readers()), "the test needs deleted documents"
        assert reader.doc_frequency("text", "the") > 5 * 128, "the test needs posting lists many blocks long"
    finally:
        reader.close()
    return ix


def said(episode: str, texts: list[str]) -> Transcript:
    """An episode whose segments say `texts`, one each, 11 s apart."""
    return Transcript(episode, f"{episode}.mp3", 11.0 * len(texts), "en", {}, SPEAKERS, tuple(
        Segment(i, SPEAKERS[i % 4], i * 11.0, i * 11.0 + 10, t, timed_words(t, i * 11.0, i * 11.0 + 10))
        for i, t in enumerate(texts)))


PHRASES = ['"the state"', '"of the"', '"the the"', '"it\'s"', '"a riddle wrapped in a mystery"',
           '"of the state of the"', '"Taliban group"', '"the Uzbek fighters"', '"state of the"', '"in a"',
           '"north border"', '"a a"', '"riddle of the state prisoners"', '"state prisoners"', '"the riddle"', '"riddle mystery"~2', '"the Taliban"~3', '"fighters was said"',
           '"wrapped in"', '"prisoners reported"', '"zeppelin state"', '"state zeppelin"']


def whoosh_top(ix: Index, query: str, limit: int, speakers=()):
    """[(score, docnum)] from whoosh's own collector, without block-quality skipping."""
    q = parse_query(query, mi.SCHEMA)

    def run(searcher):
        c = TopCollector(limit=limit, usequality=False)
        if speakers:
            allow = set(searcher.docs_for_query(Term("speaker_key", speaker_key(speakers[0]))))
            c = FilterCollector(c, allow=allow)
        searcher.search_with_collector(q, c)
        return [(r.score, r.docnum) for r in c.results()]

    return ix._search_with(run)


def fast_top(ix: Index, query: str, limit: int, speakers=()):
    q = parse_query(query, mi.SCHEMA)
    assert type(q) is Phrase, q

    def run(searcher):
        allow = None
        if speakers:
            allow = set(searcher.docs_for_query(Term("speaker_key", speaker_key(speakers[0]))))
        return ph.top_phrase(searcher, q.fieldname, q.words, q.slop, limit, allow, pairs_field=ph.PAIRS)

    return ix._search_with(run)


@pytest.mark.parametrize("numpy_from", [0, 10**9], ids=["numpy", "python"])
def test_top_phrase_gives_whooshs_documents_order_and_scores(archive, monkeypatch, numpy_from):
    monkeypatch.setattr(ph, "NUMPY_FROM", numpy_from)
    found = 0
    for query in PHRASES:
        for limit, speakers in ((20, ()), (1, ()), (7, ()), (200, ()), (20, ("Tahir",)), (5, ("pannier",))):
            fast = fast_top(archive, query, limit, speakers)
            assert fast is not None, query
            slow = whoosh_top(archive, query, limit, speakers)
            # exactly: the same additions in the same order as whoosh's matchers make them
            assert fast == slow, (query, limit, speakers)
            found += len(fast)
    assert found > 500  # most of these phrases are in the archive


def test_block_headers_kept_between_searches_give_the_same_hits(archive, monkeypatch):
    """Headers parsed by one search serve the next; with room for one word only, every search both reuses
    and drops some."""
    monkeypatch.setattr(postings, "HEADS_KEPT", 1)
    for _ in range(2):
        for query in PHRASES:
            assert fast_top(archive, query, 20) == whoosh_top(archive, query, 20), query


def test_index_search_with_the_fast_path_equals_whooshs_own(archive, monkeypatch):
    """Whole hits (offsets, snippets, scores) through Index.search, fast path against whoosh's query."""
    used = []
    top_phrase = ph.top_phrase

    def counting(*args, **kwargs):
        out = top_phrase(*args, **kwargs)
        used.append(out is not None)
        return out

    monkeypatch.setattr(ph, "top_phrase", counting)
    queries = [(q, sp) for q in PHRASES + ['"al-Qaeda"', "how'd", '"Islamic Movement of Uzbekistan"']
               for sp in ((), ("Tolibov",))]
    fast = [archive.search(q, speakers=sp, limit=25) for q, sp in queries]
    assert len(used) == len(queries) and all(used)
    monkeypatch.setattr(ph, "top_phrase", lambda *a, **k: None)  # whoosh's own query from here on
    for (q, sp), hits in zip(queries, fast):
        assert archive.search(q, speakers=sp, limit=25) == hits, q
    assert any(fast)


def count_decodes(monkeypatch) -> list:
    """A list that grows by one for every position list top_phrase decodes."""
    decoded = []
    decoder = ph._decoder

    def counting(fmt):
        decode = decoder(fmt)
        return lambda v: decoded.append(1) or decode(v)

    monkeypatch.setattr(ph, "_decoder", counting)
    return decoded


def test_two_word_phrases_read_no_positions_where_the_index_has_pairs(archive, monkeypatch):
    decoded = count_decodes(monkeypatch)
    two = [q for q in PHRASES if len(parse_query(q, mi.SCHEMA).words) == 2 and not q.endswith(("~2", "~3"))]
    assert len(two) >= 10
    for query in two:
        assert fast_top(archive, query, 20) == whoosh_top(archive, query, 20), query
    if ph.PAIRS in archive._ix.schema:
        assert not decoded
    else:  # without pairs, a candidate holding both words is checked by their positions
        assert decoded


def test_longer_phrases_read_positions_only_where_an_inner_word_repeats(tmp_path, monkeypatch):
    """With pairs, a candidate holding its inner words once holds the phrase; the others are checked."""
    texts = ["alpha beta gamma"] * 5 + ["alpha beta delta beta gamma"] * 3 + ["alpha beta gamma beta"] * 2
    ix = Index(tmp_path / "ix", create=True)
    ix.add([said("inner", texts)])
    decoded = count_decodes(monkeypatch)
    fast = fast_top(ix, '"alpha beta gamma"', 20)
    assert fast == whoosh_top(ix, '"alpha beta gamma"', 20)
    assert len(fast) == 7  # not the three with "beta delta beta" between
    assert len(decoded) == 3 * 5  # each word's positions, in the five segments where "beta" is said twice


def test_the_commonest_words_positions_are_read_last_and_only_if_the_others_fit(tmp_path, monkeypatch):
    """"x the a the y" holds both pairs of "x the y" but not the phrase: x and y are four apart, so the
    positions of "the", the commonest word (and the costliest block to decode), are never read there."""
    texts = ["x the y"] * 2 + ["x the a the y"] * 3 + ["the b"] * 10 + ["y c"] * 2
    ix = Index(tmp_path / "ix", create=True)
    ix.add([said("common", texts)])
    decoded = count_decodes(monkeypatch)
    fast = fast_top(ix, '"x the y"', 20)
    assert fast == whoosh_top(ix, '"x the y"', 20) and len(fast) == 2
    # The two holding it say "the" once: no positions at all. The three others: x's and y's, not the's.
    assert len(decoded) == 2 * 3


def test_pairs_are_adjacent_analysed_words():
    pairs = [t.text for t in mi.SCHEMA[ph.PAIRS].analyzer("It's al-Qaeda's   fighters. The the")]
    assert pairs == ["it s", "s al", "al qaeda", "qaeda s", "s fighter", "fighter the", "the the"]
    assert list(mi.SCHEMA[ph.PAIRS].analyzer("one")) == []


@pytest.mark.parametrize("first", [64, 2048])
def test_block_reads_whooshs_blocks(archive, monkeypatch, first):
    """fastscore.Block (a block cut where its values start, decompressed that far in steps of `first`
    bytes) against whoosh's own block decoding."""
    monkeypatch.setattr(fs, "_FIRST", first)

    def run(searcher):
        blocks = 0
        for sub, _ in searcher.leaf_searchers():
            reader = sub.reader()
            for word in ("the", "of", "riddl", "s", "mysteri"):
                if ("text", word.encode()) not in reader:
                    continue
                ours = reader._terms.matcher("text", word.encode(), mi.SCHEMA["text"].format)
                theirs = reader._terms.matcher("text", word.encode(), mi.SCHEMA["text"].format)
                while theirs.is_active():
                    theirs._read_ids()
                    theirs._read_weights()
                    theirs._read_values()
                    block = fs.current_block(ours)
                    assert list(block.ids) == list(theirs._ids)
                    assert list(block.weights) == list(theirs._weights)
                    assert [fs.value_bytes(v) for v in block.values] == list(theirs._values)
                    blocks += 1
                    theirs._next_block()
                    ours._next_block()
                assert not ours.is_active()
        return blocks

    assert archive._search_with(run) > 20


def test_block_falls_back_to_whole_unpickling(archive, monkeypatch):
    """A block not laid out as expected (here: the cut marker never found) is read whole, still right."""
    monkeypatch.setattr(fs, "_ENCODE", b"\x00no such opcode\x00")

    def run(searcher):
        sub, _ = searcher.leaf_searchers()[0]
        m = sub.reader()._terms.matcher("text", b"the", mi.SCHEMA["text"].format)
        block = fs.current_block(m)
        m._read_ids()
        m._read_values()
        return block.ids == list(m._ids) and list(block.values) == list(m._values)

    assert archive._search_with(run)


def test_tree_sum_adds_as_whooshs_matcher_tree():
    from whoosh.matching import ListMatcher
    from whoosh.matching.binary import IntersectionMatcher
    from whoosh.util import make_binary_tree

    rng = random.Random(3)
    differs = 0
    for n in range(1, 8):
        for _ in range(50):
            scores = [rng.uniform(0.01, 9.0) for _ in range(n)]
            tree = make_binary_tree(IntersectionMatcher, [ListMatcher([1], [1.0], scorer=_Fixed(s)) for s in scores])
            assert ph.tree_sum(scores) == tree.score()
            differs += ph.tree_sum(scores) != sum(scores)
    assert differs  # the order matters: a left-to-right sum would not match whoosh's scores


class _Fixed:
    def __init__(self, score):
        self.value = score

    def score(self, matcher):
        return self.value

    def supports_block_quality(self):
        return False


@pytest.mark.parametrize("positions,slop,expected", [
    ([[0, 5], [1], [2]], 1, True),
    ([[0, 5], [2], [3]], 1, False),
    ([[0, 5], [6], [7]], 1, True),
    ([[3], [3]], 1, False),  # the same position twice is no phrase ("the the" needs two words)
    ([[3, 4], [3, 4]], 1, True),
    ([[0], [2]], 1, False),
    ([[0], [2]], 2, True),
    ([[0], [3]], 2, False),
    ([[0], [2], [3]], 2, True),
    ([[0], [1], [0]], 2, False),  # in order only
])
def test_has_phrase(positions, slop, expected):
    assert ph.has_phrase(positions, slop) is expected


@pytest.mark.parametrize("numpy_from", [0, 10**9], ids=["numpy", "python"])
def test_top_term_gives_whooshs_documents_order_and_scores(archive, monkeypatch, numpy_from):
    """fastscore.top_term on the same archive: long posting lists, deleted documents, speaker filters."""
    monkeypatch.setattr(fs, "NUMPY_FROM", numpy_from)
    for word in ("the", "s", "riddle", "state", "prisoners", "uzbek", "zeppelin", "ties"):
        for limit, speakers in ((20, ()), (1, ()), (300, ()), (20, ("Mudaqiq",))):
            q = parse_query(word, mi.SCHEMA)

            def run(searcher):
                allow = None
                if speakers:
                    allow = set(searcher.docs_for_query(Term("speaker_key", speaker_key(speakers[0]))))
                return fs.top_term(searcher, q.fieldname, q.text, limit, allow)

            assert archive._search_with(run) == whoosh_top(archive, word, limit, speakers), (word, limit, speakers)


def test_a_one_off_search_does_not_import_numpy(archive, tmp_path):
    """`majlis search` runs one query and exits: numpy's import would cost it more than it saves. A second
    search in the same process may use it."""
    code = textwrap.dedent(f"""
        import sys
        import majlis.search.whoosh.fastscore as fs, majlis.search.whoosh.phrase as ph
        from majlis.search.index import Index
        fs.NUMPY_FROM = ph.NUMPY_FROM = 0  # every list long enough for numpy
        ix = Index({str(archive.path)!r})
        ix.search('"the state"')
        print("numpy" in sys.modules)
        ix.search("the")
        print("numpy" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
