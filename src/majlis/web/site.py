"""What the web app's routes share: the files an episode offers, links, query checks and page context.

Files are only ever served by name lookup in the index, never from a path in the URL (app.py's docstring)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup, escape

from .. import views
from ..errors import IndexMissing, MajlisError, SearchTooSlow, TranscriptError
from ..export import WRITERS
from ..export.documents import colour_index
from ..files import read_transcript
from ..search import Index, speaker_key
from ..views import clock

MAX_LIMIT = 1000
PAGE_LIMIT = 50
PALETTE_SIZE = 8  # .spk-0 ... .spk-7 in the stylesheet
DOUBT = 0.5  # speaker_confidence below which a word's speaker is more likely someone else's than not

# extension -> media type: the formats the download links offer (those whose writer names a media type)
EXPORTS = {w.extension: w.media_type for w in WRITERS.values() if w.media_type}
# mimetypes has no entry for several of these on some systems; browsers need the right one to play them.
AUDIO_TYPES = {
    ".mp3": "audio/mpeg", ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".opus": "audio/ogg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".webm": "audio/webm", ".mp4": "video/mp4",
    ".m4v": "video/mp4", ".mkv": "video/x-matroska", ".mov": "video/quicktime", ".aif": "audio/aiff",
    ".aiff": "audio/aiff", ".wma": "audio/x-ms-wma", ".amr": "audio/amr", ".avi": "video/x-msvideo",
    ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".ts": "video/mp2t",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# -- formatting ------------------------------------------------------------------------------------------

_MARKED = re.compile(r"\[([^\[\]]*)\]")


def snippet_html(text: str) -> Markup:
    """The search snippet with its [bracketed] matched words as <mark>, everything else escaped."""
    out, at = [], 0
    for m in _MARKED.finditer(text):
        out.append(escape(text[at:m.start()]))
        out.append(Markup("<mark>") + escape(m.group(1)) + Markup("</mark>"))
        at = m.end()
    out.append(escape(text[at:]))
    return Markup("").join(out)


def parse_time(text: str, duration: float | None = None) -> float:
    seconds = views.parse_time(text)
    if seconds is None:
        raise BadRequest(f"t={text[:40]!r}: not a time (use seconds like 724.3 or 12:04.3)")
    if not math.isfinite(seconds) or (duration is not None and seconds > duration):
        raise BadRequest(f"t={text!r}: past the end of the recording ({clock(duration or 0.0)})")
    return seconds


def host_name(header: str) -> str:
    """The host of a Host header, without its port: "[::1]:8000" -> "::1", "Example.org." -> "example.org"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0].rstrip(".") if header.count(":") == 1 else header.rstrip(".")


# -- files named by the index ----------------------------------------------------------------------------

def audio_file(index: Index, record: dict[str, Any]) -> Path | None:
    """The episode's recording on disk by the rule in the module docstring, or None."""
    return views.episode_audio(index, record, audio_only=True)


def export_files(record: dict[str, Any]) -> dict[str, Path]:
    """Exports that exist beside the episode's transcript JSON: {extension: path}."""
    if not record.get("transcript"):
        return {}
    transcript = Path(record["transcript"])
    found = {}
    for ext in EXPORTS:
        p = transcript if ext == "json" and transcript.suffix == ".json" else transcript.with_name(
            f"{transcript.stem}.{ext}")
        if p.is_file():
            found[ext] = p
    if "json" in found:  # made from the transcript when asked for, linked to this server's audio
        found["html"] = found["json"]
    return found


def audio_url(episode: str) -> str:
    return "/audio/" + quote(episode, safe="")


def download_url(episode: str, ext: str) -> str:
    return "/download/" + quote(f"{episode}.{ext}", safe="")


def episode_url(episode: str, t: float | None = None) -> str:
    return "/episode/" + quote(episode, safe="") + (f"?t={t:.2f}".rstrip("0").rstrip(".") if t else "")


def status_of(e: MajlisError) -> int:
    """The HTTP status of one of majlis' errors: the index gone or a search over its budget is the server's
    state (503), the rest is the request's fault (400)."""
    return 503 if isinstance(e, (IndexMissing, SearchTooSlow)) else 400


def indexed_transcript(record: dict[str, Any]):
    """(transcript, None), or (None, why not) when the indexed transcript file cannot be read now."""
    if not record.get("transcript"):
        return None, "this episode was indexed without a transcript file"
    try:
        return read_transcript(record["transcript"]), None
    except TranscriptError as e:
        return None, str(e)


class Site:
    """What the routes share: the index, the page templates, the search budget, and the checks and lookups
    every page and API answer makes."""

    def __init__(self, index: Index, env, search_budget: float | None):
        self.index, self.env, self.search_budget = index, env, search_budget

    @staticmethod
    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def page(self, template: str, status_code: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(template).render(**context), status_code=status_code)

    def error_response(self, request: Request, status: int, message: str) -> Response:
        if self.is_api(request):
            return JSONResponse({"error": message}, status_code=status)
        if request.url.path.startswith(("/audio/", "/download/", "/static/")):
            return Response(message, status_code=status, media_type="text/plain; charset=utf-8")
        try:
            context = self.common()
        except IndexMissing:
            context = {"speakers": [], "episodes": [], "colour": lambda name: "spk-x"}
        return self.page("error.html", status, status=status, message=message, **context)

    def speakers_with_colours(self) -> list[dict[str, Any]]:
        # From the name alone: a speaker has the same colour in every index and in the HTML export.
        return [dict(r, colour=f"spk-{colour_index(r['speaker'], PALETTE_SIZE)}") for r in self.index.speakers()]

    @staticmethod
    def colour_of(speakers: list[dict[str, Any]]):
        by_key = {speaker_key(s["speaker"]): s["colour"] for s in speakers}
        return lambda name: by_key.get(speaker_key(name), "spk-x")

    def common(self) -> dict[str, Any]:
        speakers = self.speakers_with_colours()
        return {"speakers": speakers, "episodes": self.index.episodes(), "colour": self.colour_of(speakers)}

    def record_or_404(self, episode: str) -> dict[str, Any]:
        record = self.index.episode(episode)
        if record is None:
            raise BadRequest(f"episode {episode!r} is not in the index", 404)
        return record

    def search_params(self, request: Request, *, require_query: bool):
        qp = request.query_params
        query = qp.get("q", "").strip()
        if require_query and not query:
            raise BadRequest("missing query: give q=WORDS (the query language of majlis search)")
        speakers = tuple(dict.fromkeys(s.strip() for s in qp.getlist("speaker") if s.strip()))
        episode = qp.get("episode", "").strip() or None
        raw_limit = qp.get("limit")
        if raw_limit is None:
            limit = 20 if require_query else PAGE_LIMIT
        else:
            if not re.fullmatch(r"\s*\d+\s*", raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
                raise BadRequest(f"limit={raw_limit!r}: give a whole number from 1 to {MAX_LIMIT}")
            limit = int(raw_limit)
        return query, speakers, episode, limit

    def run_search(self, query: str, speakers: tuple[str, ...], episode: str | None, limit: int):
        bad_episode, nobody = views.unknown_filters(self.index, speakers, episode)
        if bad_episode:
            raise BadRequest(f"episode {episode!r} is not in the index")
        if nobody:
            raise BadRequest(f"speaker {nobody[0]!r}: nobody of that name in the index")
        return self.index.search(query, speakers=speakers, episode=episode, limit=limit, budget=self.search_budget)
