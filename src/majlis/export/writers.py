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
  segment (or per word, ExportOptions.podcast_words), written as <stem>.podcast.json.
- html, docx: one paragraph per turn (a speaker's consecutive segments), as txt; their writers are in
  documents.py.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from ..align import join_words
from ..errors import UsageError
from ..files import atomic_write_set, transcript_json
from ..types import Segment, Transcript, Turn

LINE_CHARS = 42  # the usual broadcast subtitle line
MAX_LINES = 2
PRESETS = {"broadcast": LINE_CHARS, "podcast": 32}  # subtitle characters a line; podcast players show fewer


@dataclass(frozen=True)
class ExportOptions:
    """How exports are laid out. Subtitle options follow openai-whisper's (--max_line_width, --max_line_count,
    --highlight_words); a cue still never spans two speakers."""

    max_line_width: int = LINE_CHARS
    max_line_count: int = MAX_LINES
    highlight_words: bool = False  # one cue per word, that word underlined (<u>), as whisper does
    podcast_words: bool = False  # podcast JSON: one entry per word instead of per segment
    audio_url: str | None = None  # html: where paragraphs link to (default: the recording, from the out folder)

    def __post_init__(self) -> None:
        if self.max_line_width < 1 or self.max_line_count < 1:
            raise UsageError("{max_line_width} and {max_line_count} must be at least 1",
                             arguments=("max_line_width", "max_line_count"))


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


Token = tuple[str, float, float]
Cue = tuple[float, float, list[list[Token]]]  # start, end, lines of words


def _fill(tokens: Sequence[Token], extra: int, chars: int, max_lines: int) -> list[Cue]:
    """Greedy: words onto lines of at most `chars` (a longer word gets a line alone), `max_lines` lines a cue."""
    result: list[Cue] = []
    lines: list[list[Token]] = [[]]
    for token in tokens:
        line = lines[-1]
        if line and len(join_words([t[0] for t in line] + [token[0]])) + (extra if len(lines) == 1 else 0) > chars:
            if len(lines) == max_lines:
                result.append((lines[0][0][1], line[-1][2], lines))
                lines = [[]]
            else:
                lines.append([])
        lines[-1].append(token)
    if lines[0]:
        result.append((lines[0][0][1], lines[-1][-1][2], lines))
    # WebVTT wants end > start; a zero-length word (some ASR emit them) gets one millisecond.
    return [(s, max(e, s + 0.001), [line for line in ls if line]) for s, e, ls in result]


def cue_words(seg: Segment, first_line_extra: int = 0, options: "ExportOptions | None" = None) -> list[Cue]:
    """Cut a segment into cues of at most max_line_count lines of at most max_line_width characters, timed by
    words.

    As few cues and lines as greedy filling needs, then the narrowest lines that still need no more, so that
    the text is spread evenly instead of leaving a one-word cue at the end. `first_line_extra` reserves room on
    each cue's first line (the SRT "Name: " prefix).
    """
    options = options or ExportOptions()
    width, count = options.max_line_width, options.max_line_count
    tokens = _tokens(seg)
    if not tokens:
        return []

    def size(chars: int) -> tuple[int, int]:
        filled = _fill(tokens, first_line_extra, chars, count)
        return len(filled), sum(len(lines) for _, _, lines in filled)

    fewest = size(width)
    lo, hi = 1, width  # cues and lines never grow with the line width: binary search the narrowest
    while lo < hi:
        mid = (lo + hi) // 2
        cues_, lines_ = size(mid)
        if cues_ <= fewest[0] and lines_ <= fewest[1]:
            hi = mid
        else:
            lo = mid + 1
    return _fill(tokens, first_line_extra, lo, count)


def cues(seg: Segment, first_line_extra: int = 0, options: "ExportOptions | None" = None,
         escape=lambda text: text) -> list[tuple[float, float, list[str]]]:
    """(start, end, lines of text) for each cue of `seg`; with highlight_words, as whisper: each cue shown once
    per word, timed by that word, the word underlined, and the plain cue over any gap between words."""
    options = options or ExportOptions()
    out: list[tuple[float, float, list[str]]] = []
    for start, end, lines in cue_words(seg, first_line_extra, options):
        def text(marked: Token | None = None) -> list[str]:
            return [join_words(f"<u>{escape(t[0])}</u>" if t is marked else escape(t[0]) for t in line)
                    for line in lines]

        if not options.highlight_words:
            out.append((start, end, text()))
            continue
        at = start
        for token in (t for line in lines for t in line):
            if token[1] > at + 0.0005:
                out.append((at, token[1], text()))
            at = max(token[2], token[1] + 0.001)
            out.append((token[1], at, text(token)))
    return out


class Writer:
    """One export format: `name` (what --format says), `extension` (<stem>.<extension>), `media_type` (what the
    web app serves it as; None: not offered there). A subclass decorated with @register is a format."""

    name = ""
    extension = ""
    media_type: str | None = None

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str | bytes:
        raise NotImplementedError

    def render(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> bytes:
        """The file's bytes (text formats in UTF-8)."""
        out = self.format(transcript, options)
        return out.encode("utf-8") if isinstance(out, str) else out


WRITERS: dict[str, Writer] = {}  # name -> writer, in the order "all" writes them


def register(cls: type[Writer]) -> type[Writer]:
    """Class decorator: the format is known to --format, write_transcript, rename and the web app."""
    WRITERS[cls.name] = cls()
    return cls


@register
class JsonWriter(Writer):
    name, extension, media_type = "json", "json", "application/json"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str:
        return transcript_json(transcript)


@register
class SrtWriter(Writer):
    name, extension, media_type = "srt", "srt", "application/x-subrip; charset=utf-8"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str:
        blocks, n = [], 0
        for seg in transcript.segments:
            prefix = f"{seg.speaker}: "
            for start, end, lines in cues(seg, len(prefix), options):
                n += 1
                text = "\n".join([prefix + lines[0], *lines[1:]])
                blocks.append(f"{n}\n{clock(start, ',')} --> {clock(end, ',')}\n{text}\n")
        return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@register
class VttWriter(Writer):
    name, extension, media_type = "vtt", "vtt", "text/vtt; charset=utf-8"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str:
        blocks = ["WEBVTT\n"]
        for seg in transcript.segments:
            voice = _vtt_escape(seg.speaker)
            for start, end, lines in cues(seg, 0, options, _vtt_escape):
                text = "\n".join(lines)
                blocks.append(f"{clock(start)} --> {clock(end)}\n<v {voice}>{text}\n")
        return "\n".join(blocks)


def hms(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


@register
class TxtWriter(Writer):
    name, extension, media_type = "txt", "txt", "text/plain; charset=utf-8"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str:
        return "\n".join(f"{who} [{hms(at)}]: {text}\n" for who, at, _, text in paragraphs(transcript))


def paragraphs(transcript: Transcript) -> list[tuple[str, float, float, str]]:
    """(speaker, start, end, text) for each turn: a speaker's consecutive segments, on one line."""
    out: list[tuple[str, float, float, list[str]]] = []
    for seg in transcript.segments:
        if out and out[-1][0] == seg.speaker:
            out[-1] = (seg.speaker, out[-1][1], seg.end, out[-1][3] + [_one_line(seg.text)])
        else:
            out.append((seg.speaker, seg.start, seg.end, [_one_line(seg.text)]))
    return [(who, start, end, " ".join(t for t in texts if t)) for who, start, end, texts in out]


def _one_line(text: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", text)


@register
class TsvWriter(Writer):
    name, extension, media_type = "tsv", "tsv", "text/tab-separated-values; charset=utf-8"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str:
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


@register
class RttmWriter(Writer):
    name, extension, media_type = "rttm", "rttm", "text/plain; charset=utf-8"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str:
        turns = transcript.turns or tuple(Turn(s.speaker, s.start, s.end) for s in transcript.segments)
        uri = rttm_safe(transcript.episode)
        return "".join(
            f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {rttm_safe(t.speaker)} <NA> <NA>\n"
            for t in sorted(turns, key=lambda t: (t.start, t.end)) if t.end > t.start
        )


@register
class PodcastWriter(Writer):
    name, extension = "podcast", "podcast.json"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str:
        if options.podcast_words:  # the spec's word-level form: one segment per word
            segments = [{"speaker": w.speaker or s.speaker, "startTime": round(w.start, 3),
                         "endTime": round(w.end, 3), "body": w.word.strip()}
                        for s in transcript.segments for w in s.words if w.word.strip()]
        else:
            segments = [{"speaker": s.speaker, "startTime": round(s.start, 3), "endTime": round(s.end, 3),
                         "body": s.text} for s in transcript.segments]
        return json.dumps({"version": "1.0.0", "segments": segments}, ensure_ascii=False, indent=1) + "\n"


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
    transcript: Transcript, out_dir: str | os.PathLike, formats: Sequence[str], *, stem: str | None = None,
    options: ExportOptions | None = None,
) -> list[Path]:
    """Write <out_dir>/<stem or episode>.<ext> for each format, each file whole or not at all."""
    stem = stem if stem is not None else transcript.episode
    if not stem or stem in (".", "..") or "/" in stem or "\\" in stem:
        raise UsageError(f"{stem!r}: not usable as an output file name")
    names = parse_formats(formats)
    options = options or ExportOptions()
    if options.audio_url is None:
        options = replace(options, audio_url=relative_url(transcript.audio, out_dir))
    # Format everything before writing anything, and replace the files as a set: a formatting error or a
    # full disk leaves every old file as it was.
    data = [(output_path(out_dir, stem, n), WRITERS[n].render(transcript, options)) for n in names]
    return atomic_write_set(data)


def relative_url(audio: str, out_dir: str | os.PathLike) -> str:
    """The recording as a link from a file in `out_dir` (a path relative to it when both are local)."""
    from urllib.parse import quote

    if re.match(r"^[a-z][a-z0-9+.-]*://", audio, re.I):
        return audio
    try:
        rel = os.path.relpath(Path(audio).resolve(), Path(out_dir).resolve())
    except ValueError:  # another drive (Windows)
        rel = str(Path(audio).resolve())
    return quote(Path(rel).as_posix(), safe="/:")

