"""Exports of a transcript: one small writer class per format, all registered in WRITERS.

Decisions a reader of the files should know:
- srt/vtt: every cue carries its speaker (SRT "Name: " prefix, VTT <v Name> voice tag), has at most two lines
  of about LINE_CHARS characters, and takes its times from its own words; long segments become several cues.
- tsv: start and end in seconds with 3 decimals (whisper's tsv uses integer milliseconds); speaker_confidence is
  the least sure word's, so one doubtful word flags its row.
- rttm: the diarization turns when the transcript has them, else one line per segment. RTTM fields are
  whitespace-separated, so spaces in speaker names and episode ids become underscores ("Bruce Pannier" ->
  "Bruce_Pannier").
- podcast: the Podcasting 2.0 (podcastindex podcast-namespace) JSON transcript, version 1.0.0, one entry per
  segment, written as <stem>.podcast.json.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from .align import join_words
from .errors import UsageError
from .files import atomic_write_text, transcript_json
from .types import Segment, Transcript, Turn

LINE_CHARS = 42  # the usual broadcast subtitle line
MAX_LINES = 2


def clock(seconds: float, sep: str = ".") -> str:
    ms = max(0, round(float(seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _tokens(seg: Segment) -> list[tuple[str, float, float]]:
    """(text, start, end) for each word; a segment without words gets times spread over its text."""
    if seg.words:
        return [(w.word, w.start, w.end) for w in seg.words if w.word]
    parts = seg.text.split()
    total = sum(len(p) for p in parts) or 1
    out, t = [], seg.start
    for p in parts:
        step = (seg.end - seg.start) * len(p) / total
        out.append((p, t, t + step))
        t += step
    return out


def _fill(tokens: Sequence[tuple[str, float, float]], extra: int, chars: int) -> list[tuple[float, float, list[str]]]:
    """Greedy: words onto lines of at most `chars` (a longer word gets a line alone), MAX_LINES lines a cue."""
    result: list[tuple[float, float, list[str]]] = []
    lines: list[list[str]] = [[]]
    start = end = 0.0
    for text, s, e in tokens:
        line = lines[-1]
        if line and len(join_words(line + [text])) + (extra if len(lines) == 1 else 0) > chars:
            if len(lines) == MAX_LINES:
                result.append((start, end, lines))
                lines = [[]]
            else:
                lines.append([])
        if not lines[0]:
            start = s
        lines[-1].append(text)
        end = e
    if lines[0]:
        result.append((start, end, lines))
    # WebVTT wants end > start; a zero-length word (some ASR emit them) gets one millisecond.
    return [(s, max(e, s + 0.001), [join_words(line) for line in ls if line]) for s, e, ls in result]


def cues(seg: Segment, first_line_extra: int = 0) -> list[tuple[float, float, list[str]]]:
    """Cut a segment into cues of at most MAX_LINES lines of at most LINE_CHARS characters, timed by words.

    As few cues and lines as greedy filling needs, then the narrowest lines that still need no more, so that
    the text is spread evenly instead of leaving a one-word cue at the end. `first_line_extra` reserves room on
    each cue's first line (the SRT "Name: " prefix).
    """
    tokens = _tokens(seg)
    if not tokens:
        return []

    def size(chars: int) -> tuple[int, int]:
        filled = _fill(tokens, first_line_extra, chars)
        return len(filled), sum(len(lines) for _, _, lines in filled)

    fewest = size(LINE_CHARS)
    lo, hi = 1, LINE_CHARS  # cues and lines never grow with the line width: binary search the narrowest
    while lo < hi:
        mid = (lo + hi) // 2
        cues_, lines_ = size(mid)
        if cues_ <= fewest[0] and lines_ <= fewest[1]:
            hi = mid
        else:
            lo = mid + 1
    return _fill(tokens, first_line_extra, lo)


class Writer:
    name = ""
    extension = ""

    def format(self, transcript: Transcript) -> str:
        raise NotImplementedError


class JsonWriter(Writer):
    name, extension = "json", "json"

    def format(self, transcript: Transcript) -> str:
        return transcript_json(transcript)


class SrtWriter(Writer):
    name, extension = "srt", "srt"

    def format(self, transcript: Transcript) -> str:
        blocks, n = [], 0
        for seg in transcript.segments:
            prefix = f"{seg.speaker}: "
            for start, end, lines in cues(seg, len(prefix)):
                n += 1
                text = "\n".join([prefix + lines[0], *lines[1:]])
                blocks.append(f"{n}\n{clock(start, ',')} --> {clock(end, ',')}\n{text}\n")
        return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class VttWriter(Writer):
    name, extension = "vtt", "vtt"

    def format(self, transcript: Transcript) -> str:
        blocks = ["WEBVTT\n"]
        for seg in transcript.segments:
            voice = _vtt_escape(seg.speaker)
            for start, end, lines in cues(seg):
                text = "\n".join(_vtt_escape(line) for line in lines)
                blocks.append(f"{clock(start)} --> {clock(end)}\n<v {voice}>{text}\n")
        return "\n".join(blocks)


def _hms(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


class TxtWriter(Writer):
    name, extension = "txt", "txt"

    def format(self, transcript: Transcript) -> str:
        paragraphs: list[tuple[str, float, list[str]]] = []
        for seg in transcript.segments:
            if paragraphs and paragraphs[-1][0] == seg.speaker:
                paragraphs[-1][2].append(_one_line(seg.text))
            else:
                paragraphs.append((seg.speaker, seg.start, [_one_line(seg.text)]))
        return "\n".join(f"{who} [{_hms(at)}]: {' '.join(t for t in texts if t)}\n" for who, at, texts in paragraphs)


def _one_line(text: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", text)


class TsvWriter(Writer):
    name, extension = "tsv", "tsv"

    def format(self, transcript: Transcript) -> str:
        rows = ["start\tend\tspeaker\ttext\tspeaker_confidence"]
        rows += [f"{s.start:.3f}\t{s.end:.3f}\t{_one_line(s.speaker)}\t{_one_line(s.text)}\t{_least_sure(s)}"
                 for s in transcript.segments]
        return "\n".join(rows) + "\n"


def _least_sure(segment) -> str:
    """The lowest speaker_confidence of a segment's words (empty when none has one): one doubtful word is
    enough to check the row."""
    found = [w.speaker_confidence for w in segment.words if w.speaker_confidence is not None]
    return f"{min(found):.3f}" if found else ""


def rttm_safe(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip()) or "_"


class RttmWriter(Writer):
    name, extension = "rttm", "rttm"

    def format(self, transcript: Transcript) -> str:
        turns = transcript.turns or tuple(Turn(s.speaker, s.start, s.end) for s in transcript.segments)
        uri = rttm_safe(transcript.episode)
        return "".join(
            f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {rttm_safe(t.speaker)} <NA> <NA>\n"
            for t in sorted(turns, key=lambda t: (t.start, t.end)) if t.end > t.start
        )


class PodcastWriter(Writer):
    name, extension = "podcast", "podcast.json"

    def format(self, transcript: Transcript) -> str:
        segments = [{"speaker": s.speaker, "startTime": round(s.start, 3), "endTime": round(s.end, 3),
                     "body": s.text} for s in transcript.segments]
        return json.dumps({"version": "1.0.0", "segments": segments}, ensure_ascii=False, indent=1) + "\n"


WRITERS: dict[str, Writer] = {
    w.name: w for w in (JsonWriter(), SrtWriter(), VttWriter(), TxtWriter(), TsvWriter(), RttmWriter(),
                        PodcastWriter())
}


def parse_formats(spec: str | Iterable[str]) -> list[str]:
    """"json,srt" or "all" -> format names, in the order given, each once."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        if item == "all":
            wanted = list(WRITERS)
        elif item in WRITERS:
            wanted = [item]
        else:
            raise UsageError(f"unknown format {item!r}: choose from {', '.join(WRITERS)} or all")
        names += [n for n in wanted if n not in names]
    if not names:
        raise UsageError(f"no output format given: choose from {', '.join(WRITERS)} or all")
    return names


def output_path(out_dir: str | os.PathLike, stem: str, fmt: str) -> Path:
    return Path(out_dir) / f"{stem}.{WRITERS[fmt].extension}"


def write_transcript(
    transcript: Transcript, out_dir: str | os.PathLike, formats: Sequence[str], *, stem: str | None = None
) -> list[Path]:
    """Write <out_dir>/<stem or episode>.<ext> for each format, each file whole or not at all."""
    stem = stem if stem is not None else transcript.episode
    if not stem or stem in (".", "..") or "/" in stem or "\\" in stem:
        raise UsageError(f"{stem!r}: not usable as an output file name")
    names = parse_formats(formats)
    # Format everything before writing anything: a formatting error leaves every old file as it was.
    texts = [(output_path(out_dir, stem, n), WRITERS[n].format(transcript)) for n in names]
    return [atomic_write_text(path, text) for path, text in texts]
