"""The editor of `majlis serve --edit`: JSON routes that correct an indexed episode's transcript.

  GET  /api/edit/{episode}   {"version", "speakers", "names", "undo"}: what the page needs to edit
  POST /api/edit/{episode}   {"version", "op", ...op arguments} (majlis.edits), or {"version", "op": "undo"}
                             -> {"version", "edit"}; 409 when `version` is stale, 400 when the edit does not fit
  GET  /api/edit/{episode}/history   the episode's edit history, oldest first
  POST /api/edit/{episode}/learn     {"speaker"}: take that speaker's voice into the voice library (when the
                             server has one), so later episodes name them unaided -> {"learned", "version", "seconds"}

Every POST needs the token `majlis serve --edit` printed (header X-Majlis-Edit-Token) and, when the browser
sends one, an Origin equal to this server's own: anything else is 403. Nothing here is mounted without --edit.
"""

from __future__ import annotations

import getpass
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .. import edits
from ..errors import MajlisError, TranscriptError, VoiceError

TOKEN_HEADER = "x-majlis-edit-token"
MAX_BODY = 64 * 1024


def _default_who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "editor"


@dataclass
class EditSettings:
    """`token`: what each POST must carry. `who`: recorded in the history for each edit.

    Where the voice library plugs in: `names()` gives extra names for the page's speaker menu besides the
    episode's own (the library's); `on_saved(episode, transcript_path, history_record)` runs after each save
    and what it returns (a dict, e.g. an offer to learn a renamed speaker's voice) is sent to the page as
    "offer"."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    names: Callable[[], list[str]] = lambda: []
    who: str = field(default_factory=_default_who)
    on_saved: Callable[[str, Path, dict], dict | None] | None = None
    learn: Callable[[Path, str], dict] | None = None  # (transcript path, speaker) -> what was learned


def with_library(settings: EditSettings, library) -> EditSettings:
    """`settings` wired to a voice library (majlis.voices.VoiceLibrary, read afresh on each use so voices added
    while serving show up): its names in the speaker menu, an offer to learn a voice after a save gives words
    to a name the library lacks, and the route that learns it."""
    from .. import samples
    from ..voices import check_name

    def names() -> list[str]:
        try:
            return [p.name for p in library.people()] if library.exists() else []
        except MajlisError:  # a damaged library: editing goes on without its names
            return []

    def on_saved(episode: str, path: Path, record: dict) -> dict | None:
        args = record.get("args", {})
        name = {"rename_speaker": args.get("new"), "reassign": args.get("speaker")}.get(record.get("op"))
        if not isinstance(name, str):
            return None
        try:
            name = check_name(name)  # what the library cannot take ("Unknown 2", SPEAKER_01) is not offered
        except VoiceError:
            return None
        return {"learn": name} if name not in names() else None

    def learn(path: Path, speaker: str) -> dict:
        version, voice = samples.learn_from_episode(library, path, speaker, transcript_path=path)
        return {"learned": speaker, "version": version, "seconds": round(voice.seconds, 1),
                "library": str(library.path)}

    return replace(settings, names=names, on_saved=on_saved, learn=learn)


def transcript_path(record: dict[str, Any]) -> Path:
    if not record.get("transcript"):
        raise edits.EditError("this episode was indexed without a transcript file: there is nothing to edit")
    return Path(record["transcript"])


def page_state(index, settings: EditSettings, record: dict[str, Any]) -> dict[str, Any] | None:
    """The `edit` part of the episode page's state; None when the transcript cannot be edited."""
    try:
        path = transcript_path(record)
        edits_done = edits.read_history(path)
        return {"version": edits.current_version(path), "speakers": list(record.get("speakers", [])),
                "names": list(settings.names()), "undo": edits.describe(next(iter(edits.undo_stack(edits_done)[-1:]), None))}
    except (OSError, MajlisError):
        return None


def finish_all(index) -> int:
    """Complete every save that a kill interrupted (at start); returns how many were completed."""
    from ..export.rename import finish_interrupted, journal_path

    import logging

    done = 0
    for e in index.episodes():
        if e.get("transcript") and journal_path(Path(e["transcript"])).exists():
            try:
                finish_interrupted(e["transcript"], index=index)
            except (OSError, MajlisError) as err:  # its other index gone, say: the next save tries again
                logging.getLogger("majlis").warning("%s: an interrupted save could not be completed: %s",
                                                    e["transcript"], err)
                continue
            done += 1
    return done


def mount(app: FastAPI, index, settings: EditSettings) -> None:
    saving = threading.Lock()  # one save at a time in this server (edits.save also locks across processes)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def forbidden(request: Request) -> JSONResponse | None:
        origin = request.headers.get("origin")
        if origin is not None:
            own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
            if origin.lower() != own:
                return error(403, f"edits from another origin ({origin[:100]}) are refused")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return error(403, "edits from another site are refused")
        token = request.headers.get(TOKEN_HEADER, "")
        if not token or not hmac.compare_digest(token.encode(), settings.token.encode()):
            return error(403, "editing needs the edit token printed by `majlis serve --edit` (open the link it "
                              "printed, or paste the token)")
        return None

    async def guarded_json(request: Request) -> Any:
        """The POST's JSON body, or the response refusing it (403 without the token, 413, 400)."""
        refused = forbidden(request)
        if refused is not None:
            return refused
        body = await request.body()
        if len(body) > MAX_BODY:
            return error(413, "edit too large")
        try:
            return json.loads(body)
        except ValueError:
            return error(400, "the body is not JSON")

    def record_of(episode: str) -> dict[str, Any] | None:
        return index.episode(episode)

    @app.get("/api/edit/{episode}")
    def edit_info(episode: str):
        record = record_of(episode)
        if record is None:
            return error(404, f"episode {episode!r} is not in the index")
        state = page_state(index, settings, record)
        if state is None:
            return error(400, "this episode's transcript cannot be edited (no transcript file, or it is unreadable)")
        return JSONResponse(state)

    @app.get("/api/edit/{episode}/history")
    def edit_history(episode: str):
        record = record_of(episode)
        if record is None:
            return error(404, f"episode {episode!r} is not in the index")
        return JSONResponse(edits.read_history(transcript_path(record)) if record.get("transcript") else [])

    @app.post("/api/edit/{episode}")
    async def edit_save(episode: str, request: Request):
        payload = await guarded_json(request)
        if isinstance(payload, JSONResponse):
            return payload
        if not isinstance(payload, dict) or not isinstance(payload.get("version"), str):
            return error(400, 'give {"version": <the version you edited>, "op": ...}')
        version = payload.pop("version")
        who = payload.pop("who", None)
        who = who.strip()[:100] if isinstance(who, str) and who.strip() else settings.who
        record = record_of(episode)
        if record is None:
            return error(404, f"episode {episode!r} is not in the index")

        def run():
            with saving:
                return edits.save(transcript_path(record), payload, version=version, who=who, index=index)

        try:
            result = await run_in_threadpool(run)
        except edits.Refused as e:
            return error(409, str(e))
        except TranscriptError as e:
            return error(400, f"the transcript cannot be read: {e}")
        except edits.EditError as e:
            return error(400, str(e))
        except MajlisError as e:  # the disk full, the index gone: nothing was saved
            return error(500, f"not saved: {e}")
        rec = result["record"]
        offer = None
        if rec is not None and settings.on_saved is not None:
            offer = await run_in_threadpool(settings.on_saved, episode, transcript_path(record), rec)
        return JSONResponse({"version": result["version"], "offer": offer, "edit": None if rec is None else {
            "id": rec["id"], "op": rec["op"], "who": rec["who"], "when": rec["when"]}})

    @app.post("/api/edit/{episode}/learn")
    async def edit_learn(episode: str, request: Request):
        payload = await guarded_json(request)
        if isinstance(payload, JSONResponse):
            return payload
        if settings.learn is None:
            return error(400, "this server has no voice library to learn voices into")
        speaker = payload.get("speaker") if isinstance(payload, dict) else None
        if not isinstance(speaker, str) or not speaker.strip():
            return error(400, 'give {"speaker": <the name whose voice to learn>}')
        record = record_of(episode)
        if record is None:
            return error(404, f"episode {episode!r} is not in the index")
        try:
            learned = await run_in_threadpool(lambda: settings.learn(transcript_path(record), speaker.strip()))
        except MajlisError as e:  # too little speech, the recording gone, the library unwritable
            return error(400, f"not learned: {e}")
        return JSONResponse(learned)
