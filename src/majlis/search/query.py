"""The search query language, and which spoken words a query matched inside one segment.

Query language: plain words (all must match), "exact phrase", OR, AND, NOT / -word, prefix*, typo~ and
(grouping). Whoosh's parser forgives everything, so malformed input is caught here first, to say what is
wrong instead of silently searching for something else.

Matched words are found by running the text field's own analyzer over the segment's stored words, so a
stored "Sharia," and the query word "sharia" meet as the same token, and "executed" meets "execute" as the
same stem. NOT terms never count as matched.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from whoosh import qparser
from whoosh.analysis import CompositeAnalyzer, StemFilter
from whoosh.query import AndNot, MultiTerm, Not, NullQuery, Or, Phrase, Prefix, Query, Term, Wildcard

from ..errors import QueryError
from .whoosh import expanded_terms

FIELD = "text"
# A pasted paragraph is a few hundred characters; past this a query only costs (a 10,000-character phrase
# took 14.5 s at 1,000 h) and finds nothing a shorter quote would not.
MAX_QUERY_CHARS = 500
# Whoosh builds an automaton for the edit distance: ~3 matches nearly everything and ~99 took a second to
# find nothing.
MAX_EDITS = 2
WORDS = "spoken"  # the unstemmed, lowercased words (schema.SCHEMA): what prefixes and wildcards match
CONTEXT_WORDS = 5  # words of context either side of the matched span in a snippet
LONG_SPAN = 24  # a matched span longer than this is shown as its two ends

_OPERATORS = {"AND", "OR", "ANDNOT", "NOT"}
_LEX = re.compile(r'"[^"]*"|[()]|[^\s()"]+')
# -word / +word at the start of a word (not inside "al-Qaeda"), quoted phrases left alone.
_PLUS_MINUS = re.compile(r'"[^"]*"|(?:^|(?<=[\s(]))([-+])(?=[^\s+-])')


@dataclass(frozen=True)
class Leaf:
    """One positive part of a query: a set of index terms (word, prefix/fuzzy expansion) or a phrase."""

    terms: frozenset[str] = frozenset()
    phrase: tuple[str, ...] = ()
    slop: int = 1
    words: frozenset[str] = frozenset()  # unstemmed words (an expanded prefix or wildcard)


def normalize(text: str) -> str:
    """NFKC: fullwidth, ligature and compatibility forms search as the plain letters (the index side is
    schema.Nfkc)."""
    return unicodedata.normalize("NFKC", text)


_FIELD = re.compile(r"([-+]?)([A-Za-z_]\w*):(.*)", re.S)


def split_filters(text: str) -> tuple[str, tuple[str, ...]]:
    """(the query without its speaker:NAME filters, those names). speaker:"Bruce Pannier" takes a quoted
    name; any other field:value is refused rather than searched as a word."""
    names: list[str] = []
    cut: list[tuple[int, int]] = []
    items = list(_LEX.finditer(text))
    depth = 0
    for i, m in enumerate(items):
        item = m.group(0)
        depth += (item == "(") - (item == ")")
        field = _FIELD.fullmatch(item) if not item.startswith('"') else None
        if field is None:
            continue
        sign, name, value = field.groups()
        if name.lower() != "speaker":
            raise QueryError(f"{item!r}: searching by field is not supported (only speaker:NAME filters; "
                             f"to search for the text, quote it: \"{item}\")")
        end = m.end()
        if not value and i + 1 < len(items) and items[i + 1].group(0).startswith('"') and items[i + 1].start() == end:
            value, end = items[i + 1].group(0), items[i + 1].end()
        value = value.strip('"').strip()
        if not value:
            raise QueryError(f"{item!r}: give a name after speaker: (speaker:Tahir or speaker:\"Bruce Pannier\")")
        prev = items[i - 1].group(0) if i else None
        nxt = next((x.group(0) for x in items[i + 1:] if x.start() >= end), None)
        if sign == "-" or prev in ("NOT", "OR", "ANDNOT") or nxt in ("OR", "ANDNOT") or depth:
            raise QueryError(f"speaker:{value} only narrows a search: put it beside the words, not inside (), "
                             f"with OR or negated")
        names.append(value)
        cut.append((m.start(), end))
    if not cut:
        return text, ()
    for a, b in reversed(cut):
        text = text[:a] + " " + text[b:]
    text = re.sub(r"^\s*AND\b|\bAND\s*$", "", text.strip()).strip()  # "speaker:X AND words"
    if names and not text:
        raise QueryError(f"speaker:{names[0]} only narrows a search: add words to search for")
    return text, tuple(dict.fromkeys(names))


def _rewrite_plus_minus(text: str) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1) is None:
            return m.group(0)
        return "NOT " if m.group(1) == "-" else ""

    return _PLUS_MINUS.sub(sub, text)


def _check_syntax(text: str) -> None:
    if not text.strip():
        raise QueryError("empty query: give at least one word to search for")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query of {len(text):,} characters: at most {MAX_QUERY_CHARS} (search for a shorter "
                         f"quote)")
    if text.count('"') % 2:
        raise QueryError(f"unbalanced quote in {text!r}: a phrase needs a closing \"")
    items = _LEX.findall(text)
    depth = 0
    for i, item in enumerate(items):
        prev = items[i - 1] if i > 0 else None
        nxt = items[i + 1] if i + 1 < len(items) else None
        if item == "(":
            depth += 1
            if nxt == ")":
                raise QueryError(f"empty parentheses in {text!r}")
        elif item == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"unbalanced parentheses in {text!r}: ) without (")
        elif item in ("AND", "OR", "ANDNOT"):
            if prev is None or prev in _OPERATORS or prev == "(":
                raise QueryError(f"{item} needs a word before it in {text!r}")
            if nxt is None or nxt in ("AND", "OR", "ANDNOT") or nxt == ")":
                raise QueryError(f"{item} needs a word after it in {text!r}")
        elif item == "NOT":
            if nxt is None or nxt in _OPERATORS or nxt == ")":
                raise QueryError(f"NOT needs a word after it in {text!r}")
        elif not item.startswith('"') and ("*" in item or "?" in item) and not re.search(r"\w", item):
            raise QueryError(f"{item!r} would match any word: a wildcard needs at least one letter with it")
        elif not item.startswith('"') and (edits := re.search(r"\w~(\d+)", item)) and int(edits[1]) > MAX_EDITS:
            raise QueryError(f"{item!r}: at most {MAX_EDITS} typos (~{MAX_EDITS}); more would match nearly any word")
    if depth:
        raise QueryError(f"unbalanced parentheses in {text!r}: ( without )")


class WordPrefix(Prefix):
    """`betray*`: the spoken words that start with the text, whatever their stems. Whoosh stems a prefix as a
    word ("betray" -> "betrai", which no stem of "betrayal" starts with) and stems can be shorter than a prefix
    ("allegiance" -> "allegi", against "allegian*"). expand_words() turns it into a search of exactly the
    words."""


class WordWildcard(Wildcard):
    """`be*al`, `bet?ay`: as WordPrefix, for a pattern."""


class SpokenWords(Or):
    """Segments holding one of `words` (unstemmed), searched in the spoken-words field."""

    def __init__(self, words: frozenset[str], boost: float = 1.0):
        super().__init__([Term(WORDS, w) for w in sorted(words)], boost=boost)
        self.words = words


class _Parser(qparser.QueryParser):
    def term_query(self, fieldname, text, termclass, boost=1.0, tokenize=True, removestops=True):
        # Whoosh stems a prefix as if it were a word; keep what was typed (lowercased, as the index is).
        if fieldname == FIELD and termclass in (Prefix, Wildcard):
            return (WordPrefix if termclass is Prefix else WordWildcard)(fieldname, text.lower(), boost=boost)
        return super().term_query(fieldname, text, termclass, boost, tokenize, removestops)


_UNSTEMMED: dict[int, CompositeAnalyzer] = {}


def unstemmed(analyzer) -> CompositeAnalyzer:
    """`analyzer` without its stemmer: the tokens of the spoken-words field."""
    found = _UNSTEMMED.get(id(analyzer))
    if found is None:
        found = _UNSTEMMED[id(analyzer)] = CompositeAnalyzer(
            *[item for item in analyzer.items if not isinstance(item, StemFilter)])
    return found


def expand_words(q: Query, reader, analyzer) -> Query:
    """`q` with each WordPrefix/WordWildcard replaced by a search for the spoken words it matches.

    An index written before the spoken-words field has only stems: there a prefix matches stems starting with
    the prefix as typed or as stemmed (which misses words whose stem is shorter than the prefix)."""
    spoken = WORDS in reader.schema

    def rewrite(node: Query) -> Query:
        if not isinstance(node, (WordPrefix, WordWildcard)):
            return node.apply(rewrite)
        cls = Prefix if isinstance(node, WordPrefix) else Wildcard
        if not spoken:
            stemmed = _word_tokens(node.text, analyzer)
            texts = {node.text, *stemmed[:1]} if cls is Prefix else {node.text}
            return Or([cls(FIELD, t, boost=node.boost) for t in sorted(texts)])
        words = sorted(t.decode("utf-8") if isinstance(t, bytes) else t
                       for t in expanded_terms(cls(WORDS, node.text), reader))
        return SpokenWords(frozenset(words), node.boost) if words else NullQuery

    return rewrite(q)


_PARSERS: dict[int, qparser.QueryParser] = {}


def _parser(schema) -> qparser.QueryParser:
    parser = _PARSERS.get(id(schema))
    if parser is None:
        parser = _Parser(FIELD, schema, group=qparser.AndGroup)
        # Field names, ranges, 'single quotes' and bare * are not part of our language: without these
        # plugins "12:04", "[sic]" and "it's" are just words.
        for plugin in (qparser.FieldsPlugin, qparser.RangePlugin, qparser.SingleQuotePlugin, qparser.EveryPlugin):
            parser.remove_plugin_class(plugin)
        parser.add_plugin(qparser.FuzzyTermPlugin())
        _PARSERS[id(schema)] = parser
    return parser


def parse_query(text: str, schema) -> Query:
    """A whoosh query for `text`, or QueryError saying what is wrong with it."""
    if text is None:
        raise QueryError("empty query: give at least one word to search for")
    text = normalize(str(text))
    _check_syntax(text)
    q = _parser(schema).parse(_rewrite_plus_minus(text))
    if q is None or q is NullQuery:
        raise QueryError(f"nothing searchable in {text!r}: it has no words")
    if not _walk(q, None):
        raise QueryError(f"nothing to find in {text!r}: NOT and -word only exclude; add a word to search for")
    return q


def _walk(q: Query, reader, check=None) -> list[Leaf]:
    out: list[Leaf] = []

    def visit(node: Query) -> None:
        if isinstance(node, Not):
            return
        if isinstance(node, AndNot):
            visit(node.a)
            return
        if isinstance(node, SpokenWords):
            out.append(Leaf(words=node.words))
            return
        if isinstance(node, Phrase):
            out.append(Leaf(phrase=tuple(node.words), slop=max(1, int(node.slop))))
            return
        if isinstance(node, MultiTerm):
            expanded: frozenset[str] = frozenset()
            if reader is not None:
                expanded = frozenset(
                    t.decode("utf-8") if isinstance(t, bytes) else t
                    for f, t in node.existing_terms(reader, expand=True)
                    if f == FIELD
                )
                if check is not None:  # a fuzzy word in a large vocabulary takes a while to expand
                    check()
            out.append(Leaf(terms=expanded))
            return
        if isinstance(node, Term):
            if node.fieldname == FIELD:
                out.append(Leaf(terms=frozenset([node.text])))
            return
        if node.is_leaf():
            return
        for child in node.children():
            visit(child)

    visit(q)
    return out


def positive_leaves(q: Query, reader, check=None) -> list[Leaf]:
    """The parts of `q` a hit can match, with prefix/fuzzy/wildcard terms expanded against `reader`;
    `check()` is called after each expansion (it raises to stop)."""
    return _walk(q, reader, check)


_WORD_TOKENS: dict[int, dict[str, tuple[str, ...]]] = {}
_CACHE_WORDS = 200_000


def _word_tokens(word: str, analyzer) -> tuple[str, ...]:
    cache = _WORD_TOKENS.setdefault(id(analyzer), {})
    found = cache.get(word)
    if found is None:
        if len(cache) >= _CACHE_WORDS:
            cache.clear()
        found = cache[word] = tuple(t.text for t in analyzer(word))
    return found


def _tokens(words: list[str], analyzer) -> list[tuple[str, int]]:
    """(token, word index) for the segment text exactly as it was indexed: the words joined by spaces.

    The text analyzer's tokens never span a space, so the text's tokens are each word's tokens in turn:
    analysing word by word, with a cache, gives the same tokens without re-stemming the same words for
    every hit (it was a fixed few milliseconds a query)."""
    return [(tok, i) for i, w in enumerate(words) for tok in _word_tokens(w, analyzer)]


def _spans(leaf: Leaf, tokens: list[tuple[str, int]], words: list[str], analyzer) -> list[tuple[int, int]]:
    if leaf.words:
        raw = unstemmed(analyzer)
        return [(i, i) for i, w in enumerate(words) if any(t in leaf.words for t in _word_tokens(w, raw))]
    if leaf.terms:
        return [(w, w) for tok, w in tokens if tok in leaf.terms]
    if not leaf.phrase:
        return []
    spans = []
    for i, (tok, w) in enumerate(tokens):
        if tok != leaf.phrase[0]:
            continue
        at = i
        for want in leaf.phrase[1:]:
            nxt = next((p for p in range(at + 1, min(len(tokens), at + leaf.slop + 1)) if tokens[p][0] == want),
                       None)
            if nxt is None:
                break
            at = nxt
        else:
            spans.append((w, tokens[at][1]))
    return spans


def _best_window(per_leaf: list[list[tuple[int, int]]]) -> tuple[int, int]:
    """The narrowest run of words holding one span of every leaf present (earliest on ties)."""
    events = sorted((a, b, k) for k, spans in enumerate(per_leaf) for a, b in spans)
    latest: dict[int, tuple[int, int]] = {}
    best: tuple[int, int] | None = None
    for a, b, k in events:
        latest[k] = (a, b)
        if len(latest) == len(per_leaf):
            lo = min(s[0] for s in latest.values())
            hi = max(s[1] for s in latest.values())
            if best is None or hi - lo < best[1] - best[0]:
                best = (lo, hi)
    assert best is not None
    return best


def _snippet(words: list[str], lo: int, hi: int, marked: set[int]) -> str:
    n = len(words)
    if hi - lo > LONG_SPAN:
        half = LONG_SPAN // 2
        parts = [range(max(0, lo - CONTEXT_WORDS), lo + half), None, range(hi - half + 1, min(n, hi + CONTEXT_WORDS + 1))]
    else:
        parts = [range(max(0, lo - CONTEXT_WORDS), min(n, hi + CONTEXT_WORDS + 1))]
    out = []
    for part in parts:
        if part is None:
            out.append("...")
            continue
        for i in part:
            w = words[i]
            if i in marked and (i - 1 not in marked or i == part.start):
                w = "[" + w
            if i in marked and (i + 1 not in marked or i == part.stop - 1):
                w = w + "]"
            out.append(w)
    first, last = parts[0].start, parts[-1].stop
    return ("..." if first > 0 else "") + " ".join(out) + ("..." if last < n else "")


def span_and_snippet(words: list[str], leaves: list[Leaf], analyzer) -> tuple[int | None, int | None, str]:
    """Word indexes of the first and last matched word, and a snippet with matched words in [brackets]."""
    if not words:
        return None, None, ""
    tokens = _tokens(words, analyzer)
    per_leaf = [s for s in (_spans(leaf, tokens, words, analyzer) for leaf in leaves) if s]
    if not per_leaf:
        return None, None, _snippet(words, 0, min(len(words) - 1, 2 * CONTEXT_WORDS), set())
    lo, hi = _best_window(per_leaf)
    marked = {i for spans in per_leaf for a, b in spans for i in range(a, b + 1)}
    return lo, hi, _snippet(words, lo, hi, marked)
