"""Exports of a transcript, and what rewrites them.

writers.py: the registry (a format is one Writer subclass under @register) and write_transcript; the
machine formats (json, srt, vtt, txt, tsv, rttm, podcast). documents.py: html and docx. rename.py: renaming
speakers in a transcript and every export beside it. clips.py: a stretch of a recording cut into a file."""

from __future__ import annotations

from .writers import PRESETS, WRITERS, ExportOptions, Writer, parse_formats, register, write_transcript
from . import documents  # noqa: E402,F401  (registers html and docx, after the formats above)

__all__ = ["PRESETS", "WRITERS", "ExportOptions", "Writer", "parse_formats", "register", "write_transcript"]
