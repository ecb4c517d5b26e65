"""`majlis transcribe`: recordings in, word-timed speaker-attributed transcripts out."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MajlisError, UsageError
from .progress import progress_hook


def engine_options(f):
    """Options shared by `transcribe` and `batch`: which engines run and how."""
    options = [
        click.option("--asr", type=click.Choice(["auto", "whisper", "sphinx"]), default="auto", show_default=True,
                     help="Speech recogniser: whisper when its model is available, else the offline sphinx."),
        click.option("--model", help="Whisper model name or checkpoint path [default: turbo on CUDA, base on CPU]."),
        click.option("--model-dir", type=click.Path(file_okay=False), help="Whisper model cache folder."),
        click.option("--language", help="Spoken language code [default: detect]."),
        click.option("--task", type=click.Choice(["transcribe", "translate"]), default="transcribe", show_default=True),
        click.option("--diarizer", type=click.Choice(["auto", "pyannote", "builtin", "none"]), default="auto",
                     show_default=True, help="Who-spoke-when engine: pyannote when available, else builtin."),
        click.option("--pipeline", "pyannote_pipeline", help="pyannote pipeline name or local folder."),
        click.option("--hf-token", envvar="HF_TOKEN", help="Hugging Face token for gated pyannote models [env: HF_TOKEN]."),
        click.option("--num-speakers", type=click.IntRange(1, 100), help="Exact number of speakers, if known."),
        click.option("--min-speakers", type=click.IntRange(1, 100)),
        click.option("--max-speakers", type=click.IntRange(1, 100)),
        click.option("--speakers", "speakers_dir", type=click.Path(path_type=Path),
                     help="Voice samples: DIR/<Name>.<ext> or DIR/<Name>/*.<ext>; names speakers by voice."),
        # No default here: speakers.py (and numpy with it) stays unimported until a command runs.
        click.option("--match-threshold", type=click.FloatRange(-1.0, 1.0),
                     help="Voice similarity (cosine) a speaker needs to take a name from --speakers, and "
                     "nothing else [default: calibrated per episode, which names speakers across channels]."),
        click.option("--names", help="Name speakers by hand: SPEAKER_00=Tahir,SPEAKER_01=Mudaqiq"),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Where models run [default: cuda if present]."),
        click.option("--format", "formats", default="json", show_default=True,
                     help="Comma-separated: json,srt,vtt,txt,tsv,rttm,podcast or all."),
        click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Also add transcripts to this index."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_options(kw: dict):
    from ..pipeline import Options
    from ..speakers import parse_names

    if kw["speakers_dir"] is not None and not kw["speakers_dir"].is_dir():
        raise UsageError(f"--speakers {kw['speakers_dir']}: not a folder of voice samples")
    return Options(
        asr=kw["asr"], model=kw["model"], model_dir=kw["model_dir"], language=kw["language"], task=kw["task"],
        diarizer=kw["diarizer"], pipeline=kw["pyannote_pipeline"], hf_token=kw["hf_token"],
        num_speakers=kw["num_speakers"], min_speakers=kw["min_speakers"], max_speakers=kw["max_speakers"],
        speakers_dir=kw["speakers_dir"], names=parse_names(kw["names"]) if kw["names"] else {},
        device=kw["device"],
        **({"match_threshold": kw["match_threshold"]} if kw["match_threshold"] is not None else {}),
    )


@click.command("transcribe")
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder for <episode>.<ext> outputs.")
@click.option("--episode", help="Episode id (one input only) [default: file stem].")
@engine_options
def transcribe_command(audio: tuple[Path, ...], out_dir: Path, episode: str | None, **kw) -> None:
    """Transcribe recordings (any format ffmpeg reads) into speaker-attributed, word-timed transcripts."""
    from .. import audio as audio_io
    from ..pipeline import Engines, transcribe_file
    from ..writers import parse_formats, write_transcript

    if episode and len(audio) > 1:
        raise UsageError("--episode names one episode: give one AUDIO file with it")
    formats = parse_formats(kw["formats"])
    options = build_options(kw)
    for path in audio:  # every input is checked before any model loads
        audio_io.probe(path)
    engines = Engines.load(options)
    index = None
    if kw["index_dir"] is not None:
        from ..index import Index

        index = Index(kw["index_dir"], create=True)
    failures = 0
    for path in audio:
        try:
            with progress_hook(path.name) as hook:
                transcript = transcribe_file(path, episode=episode, options=options, engines=engines, hook=hook)
            written = write_transcript(transcript, out_dir, formats)
            if index is not None:
                json_path = next((p for p in written if p.suffix == ".json"), None)
                index.add([transcript], transcript_paths={transcript.episode: json_path} if json_path else None)
        except MajlisError as e:
            if len(audio) == 1:
                raise
            failures += 1
            click.echo(f"majlis: error: {e}", err=True)
            continue
        words = sum(len(s.words) for s in transcript.segments)
        click.echo(
            f"{transcript.episode}: {transcript.duration:.1f} s, {len(transcript.segments)} segments, {words} words, "
            f"speakers {', '.join(transcript.speakers) or '-'} -> {', '.join(str(p) for p in written)}"
        )
    if failures:
        raise SystemExit(2)


commands = [transcribe_command]
