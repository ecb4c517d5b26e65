"""The old home of phrase.Pairs, kept importable: the pairs field of every index on disk pickles its analyzer
with majlis.phrase.Pairs in it. New code imports from majlis.search.whoosh.phrase."""

from .search.whoosh.phrase import Pairs

__all__ = ["Pairs"]
