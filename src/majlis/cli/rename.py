"""`majlis rename`: give speakers their names in a transcript and its exports, no models involved."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("rename")
@click.argument("transcript", type=click.Path(path_type=Path))
@click.argument("pairs", nargs=-1, metavar="OLD=NEW [OLD=NEW ...]")
def rename_command(transcript: Path, pairs: tuple[str, ...]) -> None:
    """Rename speakers in TRANSCRIPT (a majlis .json) and in every export written beside it
    (<stem>.srt, .vtt, .txt, .tsv, .rttm, .podcast.json). Renaming onto an existing name merges the two.

    Example: majlis rename out/panel.json SPEAKER_00="Muhammad Tahir" SPEAKER_01=Pannier
    """
    from ..rename import parse_pairs, rename_speakers

    mapping = parse_pairs(pairs)
    written = rename_speakers(transcript, mapping)
    click.echo(", ".join(f"{old} -> {new}" for old, new in mapping.items()))
    for path in written:
        click.echo(f"rewrote {path}")


commands = [rename_command]
