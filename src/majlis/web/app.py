"""The web app of `majlis serve`: search the index, hear each quote from the second it was said, read and
follow whole transcripts.

Files are only ever served by name lookup in the index, never from a path in the URL:
  /audio/<episode>            the recording of that indexed episode, and only if it has an audio extension;
  /download/<episode>.<ext>   <transcript stem>.<ext> beside that episode's transcript JSON, for the export
                              extensions in EXPORTS.
A recording's path, as written in the transcript, is found like this (see audio_file):
  1. an absolute path is used as written;
  2. a relative path is tried against the folder of the episode's transcript JSON,
  3. then against the index folder's parent, then against the server's working directory;
  4. last, the location the indexer found when the episode was indexed (the record's "audio_path").
"""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_right
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException

from ..audio import AUDIO_EXTENSIONS
from ..errors import IndexMissing, MajlisError, SearchTooSlow, TranscriptError
from ..files import read_transcript
from ..export import WRITERS, ExportOptions
from ..export.documents import colour_index
from ..search import Index, speaker_key

log = logging.getLogger("majlis")

HERE = Path(__file__).resolve().parent
# Seconds a search from the page or the API may take; past it the answer is 503 with a message, and the
# other searches were never waiting on it (each has a searcher of its own).
SEARCH_BUDGET = 2.0
# Host names answered whatever the bound address (DNS rebinding: a page elsewhere naming this server under
# its own host name is refused).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
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

def clock(seconds: float) -> str:
    """12:04.3 (1:02:04.3 past an hour): the form `majlis search` prints and ?t= accepts."""
    tenths = int(round(max(0.0, float(seconds)) * 10))
    h, rest = divmod(tenths, 36000)
    m, rest = divmod(rest, 600)
    s = f"{rest // 10:02d}.{rest % 10}"
    return f"{h}:{m:02d}:{s}" if h else f"{m}:{s}"


def span(seconds: float) -> str:
    """A length for people: 4:05 or 1:02:07."""
    total = int(round(max(0.0, float(seconds))))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


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


_TIME = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)$")


def parse_time(text: str, duration: float | None = None) -> float:
    m = _TIME.match(text.strip()) if len(text) <= 32 else None
    if not m:
        raise BadRequest(f"t={text[:40]!r}: not a time (use seconds like 724.3 or 12:04.3)")
    seconds = 0.0
    for part in (p for p in m.groups() if p is not None):
        seconds = seconds * 60 + float(part)
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
    written = Path(str(record.get("audio") or ""))
    if str(written) in ("", "."):
        candidates = []
    elif written.is_absolute():
        candidates = [written]
    else:
        bases = [Path(record["transcript"]).parent] if record.get("transcript") else []
        bases += [index.path.resolve().parent, Path.cwd()]
        candidates = [base / written for base in bases]
    if record.get("audio_path"):
        candidates.append(Path(record["audio_path"]))
    for c in candidates:
        if c.suffix.lower() in AUDIO_EXTENSIONS and c.is_file():
            return c.resolve()
    return None


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


# -- the app ---------------------------------------------------------------------------------------------

def create_app(index: Index, *, allowed_hosts: Iterable[str] | None = None,
               search_budget: float | None = SEARCH_BUDGET, editor=None) -> FastAPI:
    """The app. `allowed_hosts`: Host header names answered (majlis serve gives the bound host and
    loopback names, plus --allowed-host); None answers any (tests, embedding behind a proxy). `editor`: a
    web.editor.EditSettings to let the episode page correct transcripts (serve --edit); None: read-only."""
    allowed = None if allowed_hosts is None else {host_name(h) for h in allowed_hosts}
    # No slash redirects: a URL names one thing or nothing.
    app = FastAPI(title="majlis", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(clock=clock, span=span, snippet=snippet_html)
    env.globals.update(episode_url=episode_url, audio_url=audio_url, download_url=download_url)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = request.headers.get("host", "")
        if allowed is not None and host_name(host) not in allowed:
            response = Response(f"Host {host[:100]!r} is not served here (majlis serve --allowed-host NAME adds "
                                f"names)", status_code=400, media_type="text/plain; charset=utf-8")
        else:
            try:
                response = await call_next(request)
            except Exception as e:  # not one of ours: still one line in the log and the headers below
                log.error("%s %s failed: %s: %s", request.method, request.url.path, type(e).__name__, e)
                response = Response("internal error", status_code=500, media_type="text/plain; charset=utf-8")
        for k, v in SECURITY_HEADERS.items():  # on every response, errors included
            response.headers.setdefault(k, v)
        return response

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def page(template: str, status_code: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**context), status_code=status_code)

    def error_response(request: Request, status: int, message: str) -> Response:
        if is_api(request):
            return JSONResponse({"error": message}, status_code=status)
        if request.url.path.startswith(("/audio/", "/download/", "/static/")):
            return Response(message, status_code=status, media_type="text/plain; charset=utf-8")
        try:
            context = common()
        except IndexMissing:
            context = {"speakers": [], "episodes": [], "colour": lambda name: "spk-x"}
        return page("error.html", status, status=status, message=message, **context)

    @app.exception_handler(BadRequest)
    async def on_bad_request(request: Request, exc: BadRequest):
        return error_response(request, exc.status, str(exc))

    @app.exception_handler(MajlisError)
    async def on_majlis_error(request: Request, exc: MajlisError):
        return error_response(request, status_of(exc), str(exc))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException):
        message = "not found" if exc.status_code == 404 else str(exc.detail)
        return error_response(request, exc.status_code, message)

    def speakers_with_colours() -> list[dict[str, Any]]:
        # From the name alone: a speaker has the same colour in every index and in the HTML export.
        return [dict(r, colour=f"spk-{colour_index(r['speaker'], PALETTE_SIZE)}") for r in index.speakers()]

    def colour_of(speakers: list[dict[str, Any]]):
        by_key = {speaker_key(s["speaker"]): s["colour"] for s in speakers}
        return lambda name: by_key.get(speaker_key(name), "spk-x")

    def common() -> dict[str, Any]:
        speakers = speakers_with_colours()
        return {"speakers": speakers, "episodes": index.episodes(), "colour": colour_of(speakers)}

    def record_or_404(episode: str) -> dict[str, Any]:
        record = index.episode(episode)
        if record is None:
            raise BadRequest(f"episode {episode!r} is not in the index", 404)
        return record

    def search_params(request: Request, *, require_query: bool):
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

    def run_search(query: str, speakers: tuple[str, ...], episode: str | None, limit: int):
        if episode is not None and index.episode(episode) is None:
            raise BadRequest(f"episode {episode!r} is not in the index")
        known = {speaker_key(s["speaker"]) for s in index.speakers()}
        for name in speakers:
            if speaker_key(name) not in known:
                raise BadRequest(f"speaker {name!r}: nobody of that name in the index")
        return index.search(query, speakers=speakers, episode=episode, limit=limit, budget=search_budget)

    # -- JSON --------------------------------------------------------------------------------------------

    @app.api_route("/api/search", methods=["GET", "HEAD"])
    def api_search(request: Request):
        query, speakers, episode, limit = search_params(request, require_query=True)
        return JSONResponse([h.to_dict() for h in run_search(query, speakers, episode, limit)])

    @app.api_route("/api/episodes", methods=["GET", "HEAD"])
    def api_episodes():
        return JSONResponse(index.episodes())

    @app.api_route("/api/speakers", methods=["GET", "HEAD"])
    def api_speakers():
        return JSONResponse(index.speakers())

    @app.api_route("/api/episodes/{episode}", methods=["GET", "HEAD"])
    def api_episode(episode: str):
        record = record_or_404(episode)
        transcript = _load_transcript(record)[0]
        described = dict(record, audio_url=audio_url(episode),
                         downloads={ext: download_url(episode, ext) for ext in export_files(record)})
        return JSONResponse({"episode": described, "transcript": transcript.to_dict() if transcript else None})

    # -- files -------------------------------------------------------------------------------------------

    @app.api_route("/audio/{episode}", methods=["GET", "HEAD"])
    def audio(episode: str):
        record = index.episode(episode)
        path = audio_file(index, record) if record is not None else None
        if path is None:
            raise HTTPException(404)
        return FileResponse(path, media_type=AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    @app.api_route("/download/{name}", methods=["GET", "HEAD"])
    def download(name: str, request: Request):
        episode, _, ext = name.rpartition(".")
        record = index.episode(episode) if episode and ext in EXPORTS else None
        path = export_files(record).get(ext) if record is not None else None
        if path is None:
            raise HTTPException(404)
        if ext == "html":
            link = str(request.base_url).rstrip("/") + audio_url(episode)
            page = WRITERS["html"].format(read_transcript(path), ExportOptions(audio_url=link))
            return Response(page, media_type=EXPORTS[ext], headers={
                "content-disposition": f"attachment; filename*=utf-8''{quote(f'{episode}.html', safe='')}"})
        return FileResponse(path, media_type=EXPORTS[ext], filename=f"{episode}.{ext}")

    # -- pages -------------------------------------------------------------------------------------------

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    @app.api_route("/search", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def search_page(request: Request):
        query, speakers, episode, limit = search_params(request, require_query=False)
        context = common()
        hits, error, status = [], None, 200
        if query:
            try:
                hits = run_search(query, speakers, episode, limit)
            except BadRequest as e:
                error, status = str(e), e.status
            except MajlisError as e:
                if isinstance(e, IndexMissing):
                    raise
                error, status = str(e), status_of(e)
        state = {"query": query, "speakers": list(speakers), "episode": episode, "limit": limit,
                 "colours": {s["speaker"]: s["colour"] for s in context["speakers"]},
                 "titles": {e["episode"]: e.get("title") or e["episode"] for e in context["episodes"]}}
        selected = {speaker_key(s) for s in speakers}
        return page("search.html", status, query=query, selected=selected, episode=episode, hits=hits,
                    error=error, state=state, speaker_key=speaker_key, **context)

    @app.api_route("/episode/{episode}", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def episode_page(request: Request, episode: str):
        record = record_or_404(episode)
        raw_t = request.query_params.get("t")
        t = parse_time(raw_t, float(record.get("duration") or 0.0)) if raw_t not in (None, "") else None
        context = common()
        transcript, problem = _load_transcript(record)
        colour = context["colour"]
        segments, check = [], []
        if transcript is not None:
            for s in transcript.segments:
                # A word whose speaker is less sure than not is shown faintly, and its segment is listed.
                words = [(w.word.strip(), w.start, w.speaker_confidence is not None and w.speaker_confidence < DOUBT,
                          i) for i, w in enumerate(s.words) if w.word.strip()]
                segments.append({"id": s.id, "speaker": s.speaker, "start": s.start, "end": s.end,
                                 "text": s.text.strip(), "words": words, "colour": colour(s.speaker)})
                if any(doubt for _, _, doubt, _ in words):
                    check.append({"index": len(segments) - 1, "speaker": s.speaker, "start": s.start})
        current = None
        if t is not None and segments:
            current = max(0, bisect_right([s["start"] for s in segments], t) - 1)
        talk = record.get("talk_time", {})
        legend = [{"speaker": name, "colour": colour(name), "talk_time": talk.get(name)}
                  for name in record.get("speakers", [])]
        downloads = [(ext, download_url(episode, ext)) for ext in export_files(record)]
        state = {"episode": episode, "t": t, "audio": audio_url(episode)}
        if editor is not None and transcript is not None:
            from .editor import page_state

            state["edit"] = page_state(index, editor, record)
        return page("episode.html", record=record, segments=segments, check=check, current=current, t=t, legend=legend,
                    downloads=downloads, problem=problem, has_audio=audio_file(index, record) is not None,
                    state=state, **context)

    if editor is not None:
        from .editor import mount

        mount(app, index, editor)
    return app


def status_of(e: MajlisError) -> int:
    """The HTTP status of one of majlis' errors: the index gone or a search over its budget is the server's
    state (503), the rest is the request's fault (400)."""
    return 503 if isinstance(e, (IndexMissing, SearchTooSlow)) else 400


def _load_transcript(record: dict[str, Any]):
    """(transcript, None), or (None, why not) when the indexed transcript file cannot be read now."""
    if not record.get("transcript"):
        return None, "this episode was indexed without a transcript file"
    try:
        return read_transcript(record["transcript"]), None
    except TranscriptError as e:
        return None, str(e)
