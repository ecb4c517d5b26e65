"""The query language's checks and the mapping of a query's terms onto a segment's spoken words (pure logic)."""

from __future__ import annotations

import pytest
from whoosh.query import Prefix

from majlis.errors import QueryError
from majlis.search.index import ANALYZER, SCHEMA
from majlis.search.query import Leaf, parse_query, span_and_snippet

WORDS = "Well, they were executed under Sharia law for betrayal, the officials said; executed, they said.".split()


def stem(word: str) -> str:
    (token,) = [t.text for t in ANALYZER(word)]
    return token


def leaves(*items) -> list[Leaf]:
    return [Leaf(phrase=tuple(i)) if isinstance(i, tuple) else Leaf(terms=frozenset(i)) for i in items]


def test_phrase_maps_to_its_words_through_the_analyzer():
    first, last, snippet = span_and_snippet(WORDS, leaves(("sharia", "law")), ANALYZER)
    assert (WORDS[first], WORDS[last]) == ("Sharia", "law")
    assert "[Sharia law]" in snippet


def test_stems_and_punctuation_meet():
    # "betrayal," (stored) and "Betrayal" (query) are one token; "executed" and "executing" share a stem
    first, last, _ = span_and_snippet(WORDS, leaves({stem("Betrayal")}), ANALYZER)
    assert WORDS[first] == "betrayal," and first == last
    first, last, snippet = span_and_snippet(WORDS, leaves({stem("executing")}), ANALYZER)
    assert (first, last) == (3, 3)  # the first of the two "executed"
    assert snippet == "Well, they were [executed] under Sharia law for betrayal,..."


def test_several_terms_take_the_narrowest_window():
    # "executed" occurs at 3 and 12, "said" at 11 and 14: the tightest pair is 11..12
    first, last, _ = span_and_snippet(WORDS, leaves({"execut"}, {"said"}), ANALYZER)
    assert (first, last) == (11, 12)


def test_absent_or_branch_is_ignored_and_slop_is_respected():
    first, last, _ = span_and_snippet(WORDS, leaves({"zeppelin"}, {"offici"}), ANALYZER)
    assert WORDS[first] == "officials" and first == last
    assert span_and_snippet(WORDS, [Leaf(phrase=("execut", "law"), slop=1)], ANALYZER)[0] is None
    first, last, _ = span_and_snippet(WORDS, [Leaf(phrase=("execut", "law"), slop=3)], ANALYZER)
    assert (WORDS[first], WORDS[last]) == ("executed", "law")


def test_long_spans_are_shown_by_their_ends():
    words = [f"w{i}" for i in range(100)]
    words[10], words[80] = "alpha", "omega"
    first, last, snippet = span_and_snippet(words, leaves({"alpha"}, {"omega"}), ANALYZER)
    assert (first, last) == (10, 80)
    assert snippet.startswith("...") and snippet.endswith("...") and " ... " in snippet
    assert "[alpha]" in snippet and "[omega]" in snippet and len(snippet.split()) < 45


@pytest.mark.parametrize("query", ["al-Qaeda", "it's"])
def test_hyphenated_words_are_phrases_not_negations(query):
    q = parse_query(query, SCHEMA)
    assert type(q).__name__ == "Phrase", q


@pytest.mark.parametrize("query,needle", [
    ('"sharia law', "unbalanced quote"), ("NOT", "NOT needs"), ("", "empty"), ("a AND", "AND needs"),
    ("OR b", "OR needs"), ("(a b", "parentheses"), ("a b)", "parentheses"), ("*", "wildcard"),
    ("-taliban", "only exclude"), ("NOT a", "only exclude"), ("()", "empty parentheses"), ("!!!", "no words"),
])
def test_malformed(query, needle):
    with pytest.raises(QueryError, match=needle):
        parse_query(query, SCHEMA)


def test_operators_parse():
    assert type(parse_query("a OR b", SCHEMA)).__name__ == "Or"
    assert type(parse_query("a -b", SCHEMA)).__name__ == "And"  # a AND NOT b
    assert isinstance(parse_query("Uzbek*", SCHEMA), Prefix) and parse_query("Betray*", SCHEMA).text == "betray"
    assert type(parse_query("tolibof~", SCHEMA)).__name__ == "FuzzyTerm"
    assert type(parse_query("12:04 [sic]", SCHEMA)).__name__ == "And"  # no fields, no ranges
