"""The web app of `majlis serve`: search the index, hear each quote from the second it was said, read and
follow whole transcripts.

Files are only ever served by name lookup in the index, never from a path in the URL:
  /audio/<episode>            the recording of that indexed episode, and only if it has an audio extension;
  /download/<episode>.<ext>   <transcript stem>.<ext> beside that episode's transcript JSON, for the export
                              extensions in EXPORTS.
A recording's path, as written in the transcript, is found as `majlis clip` finds it (views.episode_audio):
  1. an absolute path is used as written;
  2. a relative path is tried against the folder of the episode's transcript JSON,
  3. then against the index folder's parent, then against the server's working directory;
  4. then a file of its name beside the transcript JSON;
  5. last, the location the indexer found when the episode was indexed (the record's "audio_path").
Only a file with an audio extension is served.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from starlette.exceptions import HTTPException

from ..errors import IndexMissing, MajlisError
from ..export import WRITERS, ExportOptions
from ..files import read_transcript
from ..search import Index, speaker_key
from ..views import clock, span
from .site import (  # noqa: F401  (audio_file, parse_time: importable from here as before)
    AUDIO_TYPES, DOUBT, EXPORTS, SECURITY_HEADERS, BadRequest, Site, indexed_transcript, audio_file, audio_url,
    download_url, episode_url, export_files, host_name, parse_time, snippet_html, status_of,
)

log = logging.getLogger("majlis")

HERE = Path(__file__).resolve().parent
# Seconds a search from the page or the API may take; past it the answer is 503 with a message, and the
# other searches were never waiting on it (each has a searcher of its own).
SEARCH_BUDGET = 2.0
# Host names answered whatever the bound address (DNS rebinding: a page elsewhere naming this server under
# its own host name is refused).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


# -- the app ---------------------------------------------------------------------------------------------

def create_app(index: Index, *, allowed_hosts: Iterable[str] | None = None,
               search_budget: float | None = SEARCH_BUDGET, editor=None) -> FastAPI:
    """The app. `allowed_hosts`: Host header names answered (majlis serve gives the bound host and
    loopback names, plus --allowed-host); None answers any (tests, embedding behind a proxy). `editor`: a
    web.editor.EditSettings to let the episode page correct transcripts (serve --edit); None: read-only."""
    # No slash redirects: a URL names one thing or nothing.
    app = FastAPI(title="majlis", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(clock=clock, span=span, snippet=snippet_html)
    env.globals.update(episode_url=episode_url, audio_url=audio_url, download_url=download_url)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    site = Site(index, env, search_budget)
    _guard(app, None if allowed_hosts is None else {host_name(h) for h in allowed_hosts})
    _error_handlers(app, site)
    _api_routes(app, site)
    _file_routes(app, site)
    _page_routes(app, site, editor)
    if editor is not None:
        from .editor import mount

        mount(app, index, editor)
    return app


def _guard(app: FastAPI, allowed: set[str] | None) -> None:
    """Every response: the Host checked (DNS rebinding), errors kept to one log line, the security headers."""

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


def _error_handlers(app: FastAPI, site: Site) -> None:
    """Errors as JSON under /api/, plain text for files, else the error page."""
    error_response = site.error_response

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


def _api_routes(app: FastAPI, site: Site) -> None:
    """The JSON API."""
    index, record_or_404 = site.index, site.record_or_404
    search_params, run_search = site.search_params, site.run_search

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
        transcript = indexed_transcript(record)[0]
        described = dict(record, audio_url=audio_url(episode),
                         downloads={ext: download_url(episode, ext) for ext in export_files(record)})
        return JSONResponse({"episode": described, "transcript": transcript.to_dict() if transcript else None})


def _file_routes(app: FastAPI, site: Site) -> None:
    """Recordings and exports, by episode name only."""
    index = site.index

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


def _page_routes(app: FastAPI, site: Site, editor) -> None:
    """The search page and the episode page."""
    index, page, common, record_or_404 = site.index, site.page, site.common, site.record_or_404
    search_params, run_search = site.search_params, site.run_search

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
        transcript, problem = indexed_transcript(record)
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
