"""`majlis rename`: give speakers their names in a transcript and its exports, no models involved."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("rename")
@click.argument("transcript", type=click.Path(path_type=Path))
@click.argument("pairs", nargs=-1, metavar="OLD=NEW [OLD=NEW ...]")
@click.option("--index", "index_dir", type=click.Path(path_type=Path),
              help="Also replace the episode in this search index, so searches find the new names.")
@click.option("--learn", is_flag=True,
              help="Also take each renamed speaker's voice into the voice library (`majlis voices`), so the next "
              "episode names them unaided.")
@click.option("--voices", "voices_dir", type=click.Path(path_type=Path),
              help="With --learn: the voice library [default: 'voices' beside --index, else ./voices].")
def rename_command(transcript: Path, pairs: tuple[str, ...], index_dir: Path | None, learn: bool,
                   voices_dir: Path | None) -> None:
    """Rename speakers in TRANSCRIPT (a majlis .json) and in every export written beside it
    (<stem>.srt, .vtt, .txt, .tsv, .rttm, .podcast.json). Renaming onto an existing name merges the two.

    Example: majlis rename out/panel.json SPEAKER_00="Muhammad Tahir" SPEAKER_01=Pannier

    Everything is checked before anything is written; if a rename is interrupted, run the same command
    again to complete it.
    """
    from ..export.rename import parse_pairs, rename_speakers

    mapping = parse_pairs(pairs)
    if voices_dir is not None and not learn:
        from ..errors import UsageError

        raise UsageError("--voices goes with --learn (the library the renamed voices are added to)")
    learned = None
    if learn:
        from ..samples import learn_from_rename

        # Checked and embedded before anything is renamed: a voice that cannot be learned renames nothing.
        learned = learn_from_rename(transcript, mapping, voices_dir=voices_dir, index_dir=index_dir)
    index = None
    if index_dir is not None:
        from ..search import Index

        index = Index(index_dir)  # a missing or foreign index fails here, before anything is written
    try:
        written = rename_speakers(transcript, mapping, index=index)
    finally:
        if index is not None:
            index.close()
    click.echo(", ".join(f"{old} -> {new}" for old, new in mapping.items()))
    for path in written:
        click.echo(f"rewrote {path}")
    if index is not None:
        click.echo(f"re-indexed the episode in {index_dir}")
    if learned is not None:
        library, found, samples = learned
        for voice, sample in zip(found, samples):
            version = library.add(voice.speaker, [sample])
            click.echo(f"learned {voice.speaker}'s voice ({voice.seconds:.1f} s of words) into {library.path}: "
                       f"version {version}")


commands = [rename_command]
