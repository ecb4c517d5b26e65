"""Exports for reading rather than for machines: a standalone HTML transcript and a Word document, one
paragraph per turn with the speaker's name and the time it starts (HtmlWriter and DocxWriter, below, call
these), and the speaker colours they share with the web page."""

from __future__ import annotations

import datetime
import html
import io
import zipfile
import zlib

from typing import Sequence

from ..types import Transcript
from .writers import ExportOptions, Writer, hms, paragraphs, register

Turn = tuple[str, float, float, str]  # speaker, start, end, text (writers.paragraphs)

# The web page's speaker colours (.spk-N in web/static/majlis.css), in the same order.
PALETTE = ("#2563eb", "#c2410c", "#15803d", "#7e22ce", "#be123c", "#0e7490", "#a16207", "#4d5bd6")


def colour_index(name: str, size: int = len(PALETTE)) -> int:
    """A speaker's colour slot, from the name alone (case and spacing aside), so that a name has the same colour
    in every index, page and export."""
    key = " ".join(str(name).split()).casefold()
    # Adler-32 modulo a small size is the byte sum: numbered names (SPEAKER_00, SPEAKER_01, Unknown 1, ...) take
    # consecutive slots, so up to `size` of them never share a colour (a scrambling hash often did).
    return zlib.adler32(key.encode("utf-8")) % size


def _seconds(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


_STYLE = """
body { font: 16px/1.55 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } .meta { color: #59636e; margin-top: 0; }
audio { width: 100%; margin: 1rem 0; } .turn { margin: 0 0 1rem; }
.time { font-variant-numeric: tabular-nums; color: #59636e; text-decoration: none; margin-right: .4rem; }
.speaker { margin-right: .4rem; }
""".strip()


def html_page(transcript: Transcript, turns: Sequence[Turn], audio_url: str) -> str:
    """A page that opens anywhere: each paragraph's time links to the recording at that moment (#t=START)."""
    esc = html.escape
    title = transcript.metadata.get("title") or transcript.episode
    speakers = ", ".join(transcript.speakers)
    colours = "\n".join(f".spk-{i} .speaker {{ color: {c}; }}" for i, c in enumerate(PALETTE))
    rows = [
        f'<p class="turn spk-{colour_index(who)}" id="t{n}" data-start="{_seconds(start)}" '
        f'data-end="{_seconds(end)}"><a class="time" href="{esc(audio_url)}#t={_seconds(start)}">'
        f'{hms(start)}</a><b class="speaker">{esc(who)}</b>{esc(text)}</p>'
        for n, (who, start, end, text) in enumerate(turns)
    ]
    return "\n".join([
        "<!DOCTYPE html>",
        f'<html lang="{esc(transcript.language or "und")}">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>\n{_STYLE}\n{colours}\n</style></head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{hms(transcript.duration)}{" · " + esc(speakers) if speakers else ""}</p>',
        f'<audio controls preload="none" src="{esc(audio_url)}"></audio>',
        "<main>", *rows, "</main>",
        "</body></html>",
    ]) + "\n"


def docx_bytes(transcript: Transcript, turns: Sequence[Turn]) -> bytes:
    """For producers: a Word document, one paragraph a turn, its time and then the speaker's name in bold."""
    import docx  # python-docx: only this export needs it

    doc = docx.Document()
    doc.core_properties.title = transcript.metadata.get("title") or transcript.episode
    doc.add_heading(doc.core_properties.title, level=1)
    for who, start, _, text in turns:
        p = doc.add_paragraph()
        p.add_run(f"[{hms(start)}] ")
        p.add_run(who).bold = True
        p.add_run(f": {text}")
    # python-docx stamps the package with the time it was saved (core properties and zip entries); fixed stamps
    # make the same transcript give the same bytes, so an export rewritten by rename or resume is comparable.
    doc.core_properties.created = doc.core_properties.modified = _FIXED_TIME
    buf = io.BytesIO()
    doc.save(buf)
    return _with_fixed_zip_times(buf.getvalue())


_FIXED_TIME = datetime.datetime(2000, 1, 1)


def _with_fixed_zip_times(package: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info))
    return out.getvalue()


@register
class HtmlWriter(Writer):
    name, extension, media_type = "html", "html", "text/html; charset=utf-8"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> str:
        return html_page(transcript, paragraphs(transcript), options.audio_url or transcript.audio)


@register
class DocxWriter(Writer):
    name, extension = "docx", "docx"
    media_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

    def format(self, transcript: Transcript, options: ExportOptions = ExportOptions()) -> bytes:
        return docx_bytes(transcript, paragraphs(transcript))
