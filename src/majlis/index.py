"""The old home of the index, kept importable: every index on disk pickles its analyzer with majlis.index.Nfkc
in it, so whoosh looks the class up here when it opens one. New code imports from majlis.search."""

from .search.index import Index
from .search.schema import ANALYZER, SCHEMA, Nfkc, speaker_key

__all__ = ["ANALYZER", "SCHEMA", "Index", "Nfkc", "speaker_key"]
