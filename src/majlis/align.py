"""Words -> speakers: give every ASR word the speaker of the diarization turn it falls in, then cut the
attributed words into readable segments (runs of one speaker, split at sentence ends, pauses and length).

Pure functions on records; the pipeline calls `align_words` and, without a diarizer, `single_speaker`.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from typing import Callable, Iterable, NamedTuple, Sequence

from .diarize import Diarization
from .types import Segment, Turn, Word

# A sentence end followed by at least this pause ends a segment; so does an ASR segment boundary.
SENTENCE_PAUSE = 0.3
# Any pause longer than this ends a segment, punctuation or not (sphinx emits none).
LONG_PAUSE = 1.0
# Segments longer than this are cut, at the best break in their second half.
MAX_SEGMENT = 30.0
# Seconds of a word two speakers' turns must each cover (at most half the word) to mark it an overlap.
OVERLAP_LEAST = 0.1
# Label for words when the diarizer found no turns at all.
FALLBACK_SPEAKER = "SPEAKER_00"

_SENTENCE_END = re.compile(r"[.?!…。？！؟][\"'”’»)\]]*$")
_CLAUSE_END = re.compile(r"[,;:،、，；：][\"'”’»)\]]*$")
# Tokens that attach to the previous word (whisper and others may emit punctuation as its own token).
_ATTACH_LEFT = re.compile(r"^[.,!?;:%…)\]}\"'”’»。，、？！؟،]+$")
_ATTACH_RIGHT = re.compile(r"^[(\[{“‘«¿¡]+$")


def single_speaker(duration: float, label: str = "SPEAKER_00") -> Diarization:
    """The whole recording as one speaker's turn (used when no diarizer runs)."""
    turn = Turn(label, 0.0, max(0.0, float(duration)))
    return Diarization(turns=(turn,), exclusive=(turn,))


def join_words(words: Iterable[str]) -> str:
    """Words joined by single spaces, with no space before punctuation tokens or after opening ones."""
    out: list[str] = []
    glue = True  # no space before the first token
    for w in words:
        if not w:
            continue
        if out and not glue and not _ATTACH_LEFT.match(w):
            out.append(" ")
        out.append(w)
        glue = bool(_ATTACH_RIGHT.match(w))
    return "".join(out)


def is_sentence_end(word: str) -> bool:
    return bool(_SENTENCE_END.search(word))


def is_trailing_punctuation(word: str) -> bool:
    return bool(_ATTACH_LEFT.match(word))


@dataclass(frozen=True)
class _Speakers:
    """Turns sorted by start, with a running maximum of ends so bisect works even if turns overlap."""

    turns: tuple[Turn, ...]
    starts: tuple[float, ...]
    max_end: tuple[float, ...]  # max(end of turns[0..i])
    max_end_at: tuple[int, ...]  # index of the turn holding that max

    @classmethod
    def build(cls, turns: Sequence[Turn]) -> "_Speakers":
        ordered = tuple(sorted((t for t in turns if t.end >= t.start), key=lambda t: (t.start, t.end)))
        max_end: list[float] = []
        max_end_at: list[int] = []
        for i, t in enumerate(ordered):
            if not max_end or t.end > max_end[-1]:
                max_end.append(t.end)
                max_end_at.append(i)
            else:
                max_end.append(max_end[-1])
                max_end_at.append(max_end_at[-1])
        return cls(ordered, tuple(t.start for t in ordered), tuple(max_end), tuple(max_end_at))

    def speakers_over(self, start: float, end: float, least: float) -> set[str]:
        """Speakers whose turns cover at least `least` seconds of [start, end]."""
        lo, hi = bisect_right(self.max_end, start), bisect_left(self.starts, end)
        return {t.speaker for t in self.turns[lo:hi] if min(end, t.end) - max(start, t.start) >= least}

    def speaker_of(self, start: float, end: float) -> str:
        """The turn overlapping [start, end] most; for a word in a gap (or of zero length), the nearest turn."""
        if not self.turns:
            return FALLBACK_SPEAKER
        # Turns before `lo` all end at or before `start`; turns from `hi` on start at or after `end`.
        lo = bisect_right(self.max_end, start)
        hi = bisect_left(self.starts, end)
        best, best_overlap = None, 0.0
        for i in range(lo, hi):
            t = self.turns[i]
            overlap = min(end, t.end) - max(start, t.start)
            if overlap > best_overlap:
                best, best_overlap = t, overlap
        if best is not None:
            return best.speaker
        mid = (start + end) / 2
        j = bisect_right(self.starts, mid) - 1  # last turn starting at or before mid
        before = self.turns[self.max_end_at[j]] if j >= 0 else None
        after = self.turns[j + 1] if j + 1 < len(self.turns) else None
        if before is None:
            return after.speaker  # type: ignore[union-attr]
        if after is None or max(0.0, mid - before.end) <= after.start - mid:
            return before.speaker  # ties go to the speaker who was talking
        return after.speaker


class _Token(NamedTuple):
    text: str
    start: float
    end: float
    probability: float | None
    asr_first: bool  # first word of its ASR segment


def _clean_words(asr_segments: Sequence[Segment], duration: float) -> list[_Token]:
    """Non-empty words, times clamped to [0, duration], starts non-decreasing, end >= start."""
    tokens: list[_Token] = []
    last_start = 0.0
    hi = max(0.0, float(duration))
    for seg in asr_segments:
        first = True
        for w in seg.words:
            text = w.word.strip()
            if not text:
                continue
            start = min(max(float(w.start), last_start, 0.0), hi)
            end = min(max(float(w.end), start), hi)
            last_start = start
            tokens.append(_Token(text, start, end, w.probability, first))
            first = False
    return tokens


def _break_score(words: Sequence[Word], i: int) -> tuple[int, float]:
    """How good a place to cut before words[i] is: punctuation first, then the pause."""
    prev = words[i - 1].word
    rank = 2 if is_sentence_end(prev) else 1 if _CLAUSE_END.search(prev) else 0
    return rank, words[i].start - words[i - 1].end


def _cut_long(words: list[Word]) -> tuple[list[Word], list[Word]]:
    """Split an over-long run at the best break after its first half; returns (done, carried on)."""
    start = words[0].start
    candidates = [i for i in range(1, len(words)) if words[i - 1].end - start >= MAX_SEGMENT / 2]
    if not candidates:  # only a word longer than the half itself gets here: cut before the new word
        return words, []
    i = max(candidates, key=lambda i: _break_score(words, i))
    return words[:i], words[i:]


def _segments(words: Sequence[Word], boundaries: Sequence[bool]) -> list[list[Word]]:
    runs: list[list[Word]] = []
    current: list[Word] = []
    for w, asr_first in zip(words, boundaries):
        if current:
            prev = current[-1]
            pause = w.start - prev.end
            if (
                w.speaker != prev.speaker
                or pause > LONG_PAUSE
                or (pause >= SENTENCE_PAUSE and (is_sentence_end(prev.word) or asr_first))
            ):
                runs.append(current)
                current = []
            elif w.end - current[0].start > MAX_SEGMENT:
                done, current = _cut_long(current)
                runs.append(done)
                # The carried-on part may itself still be long (one word per 30 s is not speech, but be safe).
                while current and w.end - current[0].start > MAX_SEGMENT and len(current) > 1:
                    done, current = _cut_long(current)
                    runs.append(done)
        current.append(w)
    if current:
        runs.append(current)
    return runs


def align_words(
    asr_segments: Sequence[Segment], exclusive: Sequence[Turn], *, duration: float,
    turns: Sequence[Turn] = (), recheck: Callable[[list[Word]], list[Word]] | None = None,
) -> tuple[Segment, ...]:
    """Attribute every ASR word to a speaker and regroup the words into speaker segments, in time order.

    A word takes the speaker of the exclusive turn it overlaps most, or of the nearest turn when it falls in a
    gap; a punctuation token takes the speaker of the word before it. `recheck` may then change speakers
    word by word (attribution.recheck hears each word's own voice); a word that two speakers' `turns`
    (overlaps kept) cover is marked `overlap`. Costs O(words * log turns) before the recheck.
    """
    tokens = _clean_words(asr_segments, duration)
    if not tokens:
        return ()
    speakers = _Speakers.build(exclusive)
    words: list[Word] = []
    for text, start, end, probability, _ in tokens:
        if words and is_trailing_punctuation(text):
            speaker = words[-1].speaker
        else:
            speaker = speakers.speaker_of(start, end)
        words.append(Word(text, start, end, speaker, probability))
    if recheck is not None:
        words = recheck(words)
        for i, (w, tok) in enumerate(zip(words, tokens)):
            if i and is_trailing_punctuation(tok.text):  # punctuation is not heard: it follows its word
                words[i] = replace(w, speaker=words[i - 1].speaker,
                                   speaker_confidence=words[i - 1].speaker_confidence)
    if turns:
        both = _Speakers.build(turns)
        words = [replace(w, overlap=True) if len(both.speakers_over(w.start, w.end, min(OVERLAP_LEAST,
                 (w.end - w.start) / 2) or 1e-3)) >= 2 else w for w in words]
    runs = _segments(words, [t.asr_first for t in tokens])
    return tuple(
        # The end is the latest word end, not the last word's: a long word may end after a short one that
        # starts later, and every word must lie inside its segment (majlis.validate).
        Segment(i, run[0].speaker or FALLBACK_SPEAKER, run[0].start, max(w.end for w in run),
                join_words(w.word for w in run), tuple(run))
        for i, run in enumerate(runs)
    )
