"""The records that flow through majlis, and their one dict form (schema majlis.transcript/1).

Records are frozen; conversion to plain dicts happens only at the edges (JSON, index, web).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

SCHEMA = "majlis.transcript/1"

# hook(stage, completed, total): the library reports progress through this and never prints.
ProgressHook = Callable[[str, float, float], None]
# on_words(words): an ASR engine hands over each group of words as soon as it is decoded.
WordsHook = Callable[[Sequence["Word"]], None]


def _t(x: float) -> float:
    return round(float(x), 3)


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    speaker: str | None = None
    probability: float | None = None
    # 0-1: how clearly the word's own voice is its speaker's rather than anyone else's (0.5: a tie).
    speaker_confidence: float | None = None
    overlap: bool = False  # another speaker talks during this word

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"word": self.word, "start": _t(self.start), "end": _t(self.end)}
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if self.probability is not None:
            d["probability"] = round(float(self.probability), 3)
        if self.speaker_confidence is not None:
            d["speaker_confidence"] = round(float(self.speaker_confidence), 3)
        if self.overlap:
            d["overlap"] = True
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Word":
        return cls(str(d["word"]), float(d["start"]), float(d["end"]), d.get("speaker"), d.get("probability"),
                   d.get("speaker_confidence"), bool(d.get("overlap", False)))


@dataclass(frozen=True)
class Segment:
    id: int
    speaker: str
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "speaker": self.speaker,
            "start": _t(self.start),
            "end": _t(self.end),
            "text": self.text,
            "words": [w.to_dict() for w in self.words],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Segment":
        return cls(
            int(d["id"]),
            str(d["speaker"]),
            float(d["start"]),
            float(d["end"]),
            str(d["text"]),
            tuple(Word.from_dict(w) for w in d.get("words", ())),
        )


@dataclass(frozen=True)
class Turn:
    """One stretch of one speaker's voice, as a diarizer reports it."""

    speaker: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"speaker": self.speaker, "start": _t(self.start), "end": _t(self.end)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Turn":
        return cls(str(d["speaker"]), float(d["start"]), float(d["end"]))


@dataclass(frozen=True)
class Damage:
    """A recording that decoded with errors: the decoder concealed what it could not read."""

    errors: int  # decoder error lines
    first_error: str
    missing: float | None = None  # seconds the header promised and the decoder did not give, where known

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"errors": self.errors, "first_error": self.first_error}
        if self.missing is not None:
            d["missing"] = _t(self.missing)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Damage":
        return cls(int(d["errors"]), str(d["first_error"]),
                   None if d.get("missing") is None else float(d["missing"]))


@dataclass(frozen=True)
class Transcript:
    episode: str
    audio: str
    duration: float
    language: str
    engines: Mapping[str, str]
    speakers: tuple[str, ...]
    segments: tuple[Segment, ...]
    # Diarization turns, overlaps kept (segments carry the exclusive attribution).
    turns: tuple[Turn, ...] = ()
    # Cosine similarity of each named speaker to their enrollment voice, when names came from voices.
    speaker_scores: Mapping[str, float] = field(default_factory=dict)
    # Carried from batch manifests: title, date, ...
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Set when the recording decoded with errors (its damaged parts concealed).
    damage: Damage | None = None

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    def with_changes(self, **changes: Any) -> "Transcript":
        return replace(self, **changes)

    def write(self, out_dir: str | os.PathLike, formats: str | Sequence[str] = ("json",), *,
              stem: str | None = None, **export_options: Any) -> list[Path]:
        """Write <out_dir>/<stem or episode>.<ext> for each format (as --format: json, srt, vtt, txt, tsv, rttm,
        podcast, html, docx, or "all"), each file whole or not at all. `export_options` are ExportOptions fields
        (max_line_width, max_line_count, highlight_words, podcast_words). Returns the paths written; raises
        UsageError for an unknown format or option."""
        from .errors import UsageError
        from .export import ExportOptions, write_transcript

        try:
            options = ExportOptions(**export_options)
        except TypeError as e:
            raise UsageError(f"write(): {e}") from None
        return write_transcript(self, out_dir, formats, stem=stem, options=options)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Transcript":
        """Returns the transcript in a majlis JSON file; raises TranscriptError if it is missing or not one."""
        from .files import read_transcript

        return read_transcript(path)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema": SCHEMA,
            "episode": self.episode,
            "audio": self.audio,
            "duration": _t(self.duration),
            "language": self.language,
            "engines": dict(self.engines),
            "speakers": list(self.speakers),
            "segments": [s.to_dict() for s in self.segments],
            "turns": [t.to_dict() for t in self.turns],
        }
        if self.speaker_scores:
            d["speaker_scores"] = {k: round(float(v), 3) for k, v in self.speaker_scores.items()}
        if self.metadata:
            d["metadata"] = dict(self.metadata)
        if self.damage is not None:
            d["damaged"] = True
            d["damage"] = self.damage.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Transcript":
        from .errors import TranscriptError

        if d.get("schema") != SCHEMA:
            raise TranscriptError(f"not a {SCHEMA} transcript (schema is {d.get('schema')!r})")
        try:
            return cls(
                episode=str(d["episode"]),
                audio=str(d["audio"]),
                duration=float(d["duration"]),
                language=str(d["language"]),
                engines=dict(d["engines"]),
                speakers=tuple(d["speakers"]),
                segments=tuple(Segment.from_dict(s) for s in d["segments"]),
                turns=tuple(Turn.from_dict(t) for t in d.get("turns", ())),
                speaker_scores=dict(d.get("speaker_scores", {})),
                metadata=dict(d.get("metadata", {})),
                damage=Damage.from_dict(d["damage"]) if d.get("damage") else None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise TranscriptError(f"malformed transcript: {type(e).__name__}: {e}") from None


@dataclass(frozen=True)
class Hit:
    """One search result: the audio offsets of the matched words inside one segment."""

    episode: str
    audio: str
    speaker: str
    start: float
    end: float
    segment_start: float
    segment_end: float
    text: str  # highlighted snippet, matched terms in [brackets]
    score: float
    url: str  # media fragment: AUDIO#t=START,END

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "audio": self.audio,
            "speaker": self.speaker,
            "start": _t(self.start),
            "end": _t(self.end),
            "segment_start": _t(self.segment_start),
            "segment_end": _t(self.segment_end),
            "text": self.text,
            "score": round(float(self.score), 4),
            "url": self.url,
        }
