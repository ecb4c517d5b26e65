"""`majlis index | search | clip | speakers | episodes`: find who said what, and when, across an archive.

Nothing here loads an engine: search must start fast, so only whoosh (inside the commands) is imported.
`search` exits 1 when nothing matches (like grep), 2 for a malformed query.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from .. import views
from ..errors import UsageError
from ..views import clock

DEFAULT_INDEX = Path("index")

index_option = click.option(
    "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_INDEX,
    show_default=True, help="Index folder.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def parse_time(text: str, name: str) -> float:
    """Seconds from "724.3", "12:04.3" or "1:02:04.3" (the forms search prints)."""
    seconds = views.parse_time(text)
    if seconds is None:
        raise UsageError(f"{name} {text!r}: not a time (use seconds like 724.3 or 12:04.3)")
    return seconds


def _open(index_dir: Path):
    from ..search import Index

    return Index(index_dir)


def _echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=1))


@click.command("index")
@click.argument("transcripts", nargs=-1, type=click.Path(path_type=Path))
@index_option
@click.option("--optimize", is_flag=True,
              help="Then merge the index into one piece: searches start and run faster after a bulk load.")
def index_command(transcripts: tuple[Path, ...], index_dir: Path, optimize: bool) -> None:
    """Add transcripts (majlis JSON) to the search index; an episode indexed again is replaced."""
    from ..audio import is_audio_path
    from ..files import read_transcript
    from ..search import Index

    if not transcripts and not optimize:
        raise UsageError("index: give transcripts to add (majlis JSON), or --optimize")
    if not transcripts:
        Index(index_dir).optimize()
        click.echo(f"optimized {index_dir}")
        return
    for path in transcripts:
        if is_audio_path(path):
            raise UsageError(f"{path}: a recording, not a transcript; transcribe it first "
                             f"(majlis transcribe {path} --index {index_dir})")
    loaded = [(path, read_transcript(path)) for path in transcripts]  # every file checked before writing
    index = Index(index_dir, create=True)
    index.add([t for _, t in loaded], transcript_paths={t.episode: path for path, t in loaded})
    episodes = {t.episode: t for _, t in loaded}
    segments = sum(len(t.segments) for t in episodes.values())
    words = sum(len(s.words) for t in episodes.values() for s in t.segments)
    if optimize:
        index.optimize()
    click.echo(f"indexed {len(episodes)} episode{'s' * (len(episodes) != 1)} ({segments} segments, "
               f"{words} words) into {index_dir}" + (", optimized" if optimize else ""))


# ignore_unknown_options: "-taliban" is a query word (NOT taliban), not an unknown option.
@click.command("search", context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, required=True, metavar="QUERY...")
@index_option
@click.option("--speaker", "speakers", multiple=True, help="Only this speaker (exact name, any case); repeatable.")
@click.option("--episode", help="Only this episode.")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@json_option
@click.option("--clips", "clips_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also cut each hit's audio into this folder.")
@click.option("--clip-format", type=click.Choice(["mp3", "wav", "flac", "ogg", "opus", "m4a"]), default="mp3",
              show_default=True)
def search_command(words: tuple[str, ...], index_dir: Path, speakers: tuple[str, ...], episode: str | None, limit: int,
                   as_json: bool, clips_dir: Path | None, clip_format: str) -> None:
    """Find where words were said: QUERY is words, "phrases" and operators.

    \b
    QUERY:  sharia law           both words, anywhere in one speaker turn
            "sharia law"         the exact phrase
            taliban OR isis      either word
            imu NOT taliban      (or: imu -taliban) without the second word
            uzbek*               words starting with uzbek
            tolibof~             words one typo away (~2: two typos, the most)
            taliban speaker:Tahir  only what Tahir said (speaker:"Bruce Pannier" for a full name)
    Several arguments are joined into one query; quote phrases for the shell: '"sharia law"'.
    Exit status: 0 with matches, 1 when nothing matched, 2 for a malformed query (or one that runs past
    5 s: it is stopped).
    """
    for w in words:  # unknown options land here (see ignore_unknown_options): only -word is a query word
        if w.startswith("--"):
            raise UsageError(f"search: no such option: {w} (majlis search --help lists them)")
    query = " ".join(words)
    if episode is not None and not episode.strip():
        raise UsageError("--episode '': give an episode id (majlis episodes lists them)")
    if any(not s.strip() for s in speakers):
        raise UsageError("--speaker '': give a speaker's name (majlis speakers lists them)")
    from ..search.query import normalize, split_filters

    named = split_filters(normalize(query))[1]  # speaker:NAME in the query: a malformed query fails here
    index = _open(index_dir)
    if speakers or named or episode:
        _check_filters(index, speakers + named, episode)
    hits = index.search(query, speakers=speakers, episode=episode, limit=limit)
    clips = _cut_hits(index, hits, clips_dir, clip_format) if clips_dir is not None and hits else {}
    if as_json:
        _echo_json([h.to_dict() | ({"clip": str(clips[i])} if i in clips else {}) for i, h in enumerate(hits)])
    else:
        w_ep = max((len(h.episode) for h in hits), default=0)
        w_sp = max((len(h.speaker) for h in hits), default=0)
        for i, h in enumerate(hits):
            line = f"{h.episode:<{w_ep}}  {h.speaker:<{w_sp}}  {clock(h.start)}–{clock(h.end)}  {h.text}"
            click.echo(line + (f"  -> {clips[i]}" if i in clips else ""))
    if not hits:
        click.echo(f"majlis: no matches for {query!r}", err=True)
        sys.exit(1)


def _check_filters(index, speakers: tuple[str, ...], episode: str | None) -> None:
    bad_episode, nobody = views.unknown_filters(index, speakers, episode)
    if bad_episode:
        known = [e["episode"] for e in index.episodes()]
        raise UsageError(f"--episode {episode}: not in {index.path} (indexed: {_some(known)})")
    if nobody:
        known_speakers = [s["speaker"] for s in index.speakers()]
        raise UsageError(f"--speaker {nobody[0]}: nobody of that name in {index.path} (speakers: "
                         f"{_some(known_speakers)})")


def _some(names: list[str], n: int = 12) -> str:
    if not names:
        return "none"
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "episode"


def _cut_hits(index, hits, clips_dir: Path, fmt: str) -> dict[int, Path]:
    from ..export.clips import cut_clip

    out = {}
    for i, h in enumerate(hits):
        target = clips_dir / f"{i + 1:02d}-{_safe(h.episode)}-{h.start:.2f}-{h.end:.2f}.{fmt}"
        out[i] = cut_clip(index.audio_path(h.episode), h.start, h.end, target)
    return out


@click.command("clip")
@click.option("--episode", required=True, help="Episode id (majlis episodes lists them).")
@click.option("--start", required=True, help="Start: seconds or 12:04.3.")
@click.option("--end", required=True, help="End: seconds or 12:07.9.")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file; its extension picks the format (mp3, wav, flac, ogg, opus, m4a).")
@click.option("--pad", type=click.FloatRange(0, 10), default=0.25, show_default=True,
              help="Seconds of audio kept either side.")
@index_option
def clip_command(episode: str, start: str, end: str, out_path: Path, pad: float, index_dir: Path) -> None:
    """Cut a stretch of an indexed episode's recording into an audio file."""
    from ..export.clips import clip_format, cut_clip

    s, e = parse_time(start, "--start"), parse_time(end, "--end")
    if e <= s:
        raise UsageError(f"--end {end} must be after --start {start}")
    clip_format(out_path)  # a bad extension fails before the index is read
    written = cut_clip(_open(index_dir).audio_path(episode), s, e, out_path, pad=pad)
    click.echo(f"{written} ({episode} {clock(s)}–{clock(e)})")


def _listing(index_dir: Path, as_json: bool, what: str, name: str) -> tuple[list[dict], int]:
    """The index's speakers or episodes, and the width of their `name` column; as JSON, printed here (and
    nothing left to print)."""
    rows = getattr(_open(index_dir), what)()
    if as_json:
        _echo_json(rows)
        return [], 0
    return rows, max((len(r[name]) for r in rows), default=7)


def _listing_command(name: str):
    return lambda f: click.command(name)(index_option(json_option(f)))


@_listing_command("speakers")
def speakers_command(index_dir: Path, as_json: bool) -> None:
    """List speakers with their talk time and number of episodes."""
    rows, width = _listing(index_dir, as_json, "speakers", "speaker")
    for r in rows:
        click.echo(f"{r['speaker']:<{width}}  {clock(r['talk_time']):>10}  {r['episodes']} "
                   f"episode{'s' * (r['episodes'] != 1)}")


@_listing_command("episodes")
def episodes_command(index_dir: Path, as_json: bool) -> None:
    """List indexed episodes."""
    rows, width = _listing(index_dir, as_json, "episodes", "episode")
    for r in rows:
        about = "  ".join(str(r[k]) for k in ("date", "title") if r.get(k))
        click.echo(f"{r['episode']:<{width}}  {clock(r['duration']):>10}  {r['segments']:>5} segments  "
                   f"{', '.join(r['speakers']) or '-'}" + (f"  {about}" if about else ""))


commands = [index_command, search_command, clip_command, speakers_command, episodes_command]
