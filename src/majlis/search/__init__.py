"""Search: the Whoosh index of transcripts (Index) and its query language (query).

index.py holds the Index; schema.py what a document holds; query.py parses queries and maps their terms
onto the words of a hit; searchers.py runs searches side by side within a time budget; whoosh/ is the only
code that reads Whoosh's private format."""

from __future__ import annotations

from .index import Index
from .schema import speaker_key

__all__ = ["Index", "speaker_key"]
