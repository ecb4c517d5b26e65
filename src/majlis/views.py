"""What `majlis search`/`clip` and the web app show and check alike: times as people write them, the filters
of a search, and where an indexed episode's recording is on this machine. Each caller words its own errors
(the CLI names its flags, the web app its query parameters)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from .files import recording_candidates

_TIME = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)$")


def clock(seconds: float) -> str:
    """12:04.3 (1:02:04.3 past an hour): the form `majlis search` prints and ?t= and --start accept."""
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


def parse_time(text: str) -> float | None:
    """Seconds from "724.3", "12:04.3" or "1:02:04.3" (the forms clock() writes); None when it is not a time."""
    m = _TIME.match(text.strip()) if len(text) <= 32 else None
    if not m:
        return None
    seconds = 0.0
    for part in (p for p in m.groups() if p is not None):
        seconds = seconds * 60 + float(part)
    return seconds


def unknown_filters(index, speakers: Sequence[str], episode: str | None) -> tuple[bool, list[str]]:
    """What a search is filtered by that the index does not hold: (the episode is unknown, the speakers
    nobody in it is called, case and spacing aside)."""
    from .search import speaker_key

    bad_episode = episode is not None and index.episode(episode) is None
    if not speakers:
        return bad_episode, []
    known = {speaker_key(s["speaker"]) for s in index.speakers()}
    return bad_episode, [name for name in speakers if speaker_key(name) not in known]


def episode_audio(index, record: dict[str, Any], *, audio_only: bool = False) -> Path | None:
    """The indexed episode's recording on this machine, or None: the first of files.recording_candidates
    (as written; relative to its transcript's folder, the index folder's parent, the working directory; its
    name beside the transcript; where the indexer found it) that is a file. `audio_only`: with an audio
    extension too (what the web app serves)."""
    from .audio import AUDIO_EXTENSIONS  # numpy comes with audio: `majlis search` starts without it

    for c in recording_candidates(record.get("audio") or "", record.get("transcript"),
                                  bases=[index.path.resolve().parent], recorded=record.get("audio_path")):
        if c.is_file() and (not audio_only or c.suffix.lower() in AUDIO_EXTENSIONS):
            return c.resolve()
    return None
