"""`majlis voices add | list | remove | from`: the voice library that names speakers in every episode."""

from __future__ import annotations

import json
from pathlib import Path

import click

voices_option = click.option(
    "--voices", "voices_dir", type=click.Path(path_type=Path),
    help="The voice library folder [default: 'voices' beside --index].")
index_option = click.option(
    "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path),
    help="The index the library sits beside, and where episode ids are looked up [default: index].")


def _library(voices_dir: Path | None, index_dir: Path | None):
    from ..voices import VoiceLibrary, default_dir

    return VoiceLibrary(voices_dir if voices_dir is not None else default_dir(index_dir))


@click.group("voices")
def voices_command() -> None:
    """The voice library: people's voiceprints, kept in one folder, that name speakers in every episode.

    `transcribe` and `batch` name speakers from it when no --speakers is given (one-to-one, as --speakers
    does), and record the library's version in the transcript. `majlis rename --learn` adds the voices of
    speakers you name by hand, so the next episode names them unaided.

    \b
    majlis voices add "Bruce Pannier" pannier1.wav pannier2.m4a
    majlis voices from transcripts/ep12.json "Unknown 2" --as "Amin Mudaqiq"
    majlis voices list
    majlis voices remove "Bruce Pannier"
    """


@voices_command.command("add")
@click.argument("name")
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--replace", is_flag=True, help="Replace NAME's voiceprint instead of adding these clips to it.")
@voices_option
@index_option
def add_command(name: str, clips: tuple[Path, ...], replace: bool, voices_dir: Path | None,
                index_dir: Path | None) -> None:
    """Add NAME's voice from CLIPs (any audio ffmpeg reads; a few seconds of that person alone each).
    A NAME already in the library gets these clips added to its voiceprint."""
    from ..samples import check_clips, clip_samples
    from ..voices import check_name

    lib = _library(voices_dir, index_dir)
    name = check_name(name)
    lib.manifest()  # a folder that is not a library fails now
    probes = check_clips(clips)
    lib.check_writable()  # checked before any clip is embedded
    samples = clip_samples(clips, probes)
    version = lib.add(name, samples, replace=replace)
    click.echo(f"{'replaced' if replace else 'added'} {name} ({len(samples)} clip{'s' if len(samples) != 1 else ''}) "
               f"in {lib.path}: version {version}")


@voices_command.command("from")
@click.argument("episode")
@click.argument("speaker")
@click.option("--as", "name", required=True, help="The person's name in the library.")
@click.option("--replace", is_flag=True, help="Replace the person's voiceprint instead of adding to it.")
@voices_option
@index_option
def from_command(episode: str, speaker: str, name: str, replace: bool, voices_dir: Path | None,
                 index_dir: Path | None) -> None:
    """Take a speaker's voice from an episode already transcribed.

    EPISODE: a transcript .json, or an episode id in the index; its recording must be where the transcript
    says, or beside it. SPEAKER: as the transcript names it ("Unknown 2", SPEAKER_01, a name)."""
    from ..samples import learn_from_episode
    from ..voices import check_name

    lib = _library(voices_dir, index_dir)
    name = check_name(name)
    version, found = learn_from_episode(lib, episode, speaker, name=name, replace=replace, index_dir=index_dir)
    click.echo(f"{'replaced' if replace else 'added'} {name}: the voice of {speaker} in {found.episode} "
               f"({found.seconds:.1f} s of words), in {lib.path}: version {version}")


@voices_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@voices_option
@index_option
def list_command(as_json: bool, voices_dir: Path | None, index_dir: Path | None) -> None:
    """List the people in the library, with how much of their voice it holds."""
    lib = _library(voices_dir, index_dir)
    manifest = lib.manifest()
    people = lib.people()
    if as_json:
        click.echo(json.dumps({"library": str(lib.path), "id": manifest["id"], "version": manifest["version"],
                               "people": [{"name": p.name, "samples": p.samples, "seconds": p.seconds,
                                           "sources": list(p.sources), "updated": p.updated} for p in people]},
                              ensure_ascii=False, indent=1))
        return
    if not lib.exists():
        click.echo(f"{lib.path}: no voice library yet (majlis voices add NAME CLIP... starts one)")
        return
    click.echo(f"{lib.path}: version {manifest['version']}, {len(people)} "
               f"{'person' if len(people) == 1 else 'people'}")
    width = max((len(p.name) for p in people), default=4)
    for p in people:
        click.echo(f"  {p.name:<{width}}  {p.samples:>3} sample{'s' if p.samples != 1 else ' '}  "
                   f"{p.seconds:7.1f} s  {p.updated}")


@voices_command.command("remove")
@click.argument("name")
@voices_option
@index_option
def remove_command(name: str, voices_dir: Path | None, index_dir: Path | None) -> None:
    """Remove NAME from the library (episodes already named keep their names)."""
    lib = _library(voices_dir, index_dir)
    version = lib.remove(name)
    click.echo(f"removed {name.strip()} from {lib.path}: version {version}")


commands = [voices_command]
