"""The only code that reads Whoosh's private format (its codec's posting blocks, term readers and length
columns) or calls its private methods. It was written against exactly one Whoosh-Reloaded release, pinned in
pyproject.toml; tests/test_whoosh_version.py fails when the installed one is another: read whoosh's changes
to the codec before moving the pin.

fastscore: BM25F top-k of one term straight off the posting blocks. phrase: exact phrases from the word-pair
field and positions. postings: the block reader both share."""

from __future__ import annotations

WHOOSH_VERSION = "2.7.5"  # the Whoosh-Reloaded release this package reads the private format of


def expanded_terms(query, reader) -> list:
    """The indexed terms a Prefix or Wildcard query over one field stands for (whoosh's private _btexts)."""
    return list(query._btexts(reader))
