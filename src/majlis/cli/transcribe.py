"""`majlis transcribe`: recordings in, word-timed speaker-attributed transcripts out."""

from __future__ import annotations

from pathlib import Path

import click

from ..asr import ENGINES
from ..diarize import DIARIZERS
from ..errors import AudioError, MajlisError, UsageError
from . import worded
from .progress import WEIGHTS, progress_hook, status


def engine_options(f):
    """Options shared by `transcribe` and `batch`: which engines run and how."""
    options = [
        click.option("--asr", type=click.Choice(ENGINES), default="auto", show_default=True,
                     help="Speech recogniser. auto: a cached openai-whisper model, else a cached CTranslate2 model, "
                     "else the bundled Whisper tiny.en (faster-whisper), else the offline sphinx."),
        click.option("--model", help="Whisper model name, checkpoint file (whisper) or CTranslate2 folder "
                     "(faster-whisper) [default: turbo on CUDA, base on CPU, else the bundled tiny.en]."),
        click.option("--model-dir", type=click.Path(file_okay=False),
                     help="Model cache folder (whisper's download folder, or the Hugging Face cache)."),
        click.option("--language", help="Spoken language code [default: detect]."),
        click.option("--task", type=click.Choice(["transcribe", "translate"]), default="transcribe", show_default=True),
        click.option("--compute-type", help="faster-whisper: CTranslate2 compute type [default: int8 on CPU, "
                     "float16 on CUDA]."),
        click.option("--beam-size", type=click.IntRange(1, 20), help="faster-whisper: beam size [default: 5]."),
        click.option("--threads", type=click.IntRange(1, 256),
                     help="faster-whisper: CPU threads [default: the cores this process may use]."),
        click.option("--vad/--no-vad", default=None,
                     help="faster-whisper: skip non-speech with Silero VAD [default: on]."),
        click.option("--prompt",
                     help="Whisper's initial prompt (context, spellings), given with every chunk of the recording."),
        click.option("--hotwords", help="Whisper: comma-separated words whose spelling to favour."),
        click.option("--speaker-hotwords", is_flag=True,
                     help="Add the --speakers names to the hotwords (spells them right; measured to cost accuracy "
                     "and speed on tiny.en)."),
        click.option("--diarizer", type=click.Choice([*DIARIZERS, "none"]), default="auto",
                     show_default=True, help="Who-spoke-when engine: pyannote when available, else builtin."),
        click.option("--pipeline", "pyannote_pipeline", help="pyannote pipeline name or local folder."),
        click.option("--hf-token", envvar="HF_TOKEN", help="Hugging Face token for gated pyannote models [env: HF_TOKEN]."),
        click.option("--num-speakers", type=click.IntRange(1, 100), help="Exact number of speakers, if known."),
        click.option("--min-speakers", type=click.IntRange(1, 100)),
        click.option("--max-speakers", type=click.IntRange(1, 100)),
        click.option("--speakers", "speakers_dir", type=click.Path(path_type=Path),
                     help="Voice samples: DIR/<Name>.<ext> or DIR/<Name>/*.<ext>; names speakers by voice."),
        click.option("--voices", "voices_dir", type=click.Path(path_type=Path),
                     help="Voice library to name speakers from when no --speakers is given [default: the folder "
                     "'voices' beside --index, if it is a library]; see `majlis voices`."),
        click.option("--no-voices", is_flag=True, help="Name no speaker from the voice library."),
        # No default here: speakers.py (and numpy with it) stays unimported until a command runs.
        click.option("--match-threshold", type=click.FloatRange(-1.0, 1.0),
                     help="Voice similarity (cosine) a speaker needs to take a name from --speakers, and "
                     "nothing else [default: calibrated per episode, which names speakers across channels]."),
        click.option("--names", help="Name speakers by hand: SPEAKER_00=Tahir,SPEAKER_01=Mudaqiq"),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Where models run [default: cuda if present]."),
        click.option("--diarize/--no-diarize", default=None,
                     help="--no-diarize: one speaker, no diarizer (--diarizer none)."),
        click.option("--format", "formats", default="all", show_default=True,
                     help="Comma-separated: json,srt,vtt,txt,tsv,rttm,podcast,html,docx or all."),
        click.option("--subtitles", "subtitle_style", type=click.Choice(["broadcast", "podcast"]), default="broadcast",
                     show_default=True, help="srt/vtt line width: broadcast 42 characters, podcast 32."),
        click.option("--max-line-width", type=click.IntRange(1, 1000),
                     help="srt/vtt: characters a line (overrides --subtitles)."),
        click.option("--max-line-count", type=click.IntRange(1, 100), default=2, show_default=True,
                     help="srt/vtt: lines a cue."),
        click.option("--highlight-words", type=click.BOOL, is_flag=False, flag_value=True, default=False,
                     help="srt/vtt: one cue per word, the word underlined, as whisper."),
        click.option("--podcast-words", is_flag=True, help="podcast JSON: one entry per word instead of per segment."),
        click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Also add transcripts to this index."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_exports(kw: dict):
    """The export layout the subtitle and podcast options ask for (writers.ExportOptions)."""
    from ..export import PRESETS, ExportOptions

    return ExportOptions(max_line_width=kw["max_line_width"] or PRESETS[kw["subtitle_style"]],
                         max_line_count=kw["max_line_count"], highlight_words=kw["highlight_words"],
                         podcast_words=kw["podcast_words"])


def build_options(kw: dict):
    from ..languages import language_code
    from ..pipeline import Options
    from ..speakers import parse_names

    diarize = kw.get("diarize")  # None: not given
    if diarize is not None:
        if (kw["diarizer"] == "none") if diarize else (kw["diarizer"] not in ("auto", "none")):
            raise UsageError(f"--{'' if diarize else 'no-'}diarize contradicts --diarizer {kw['diarizer']}")
        if not diarize:
            kw["diarizer"] = "none"
    if kw["speakers_dir"] is not None and not kw["speakers_dir"].is_dir():
        raise UsageError(f"--speakers {kw['speakers_dir']}: not a folder of voice samples")
    return Options(
        asr=kw["asr"], model=kw["model"], model_dir=kw["model_dir"], language=language_code(kw["language"]),
        task=kw["task"],
        diarizer=kw["diarizer"], pipeline=kw["pyannote_pipeline"], hf_token=kw["hf_token"],
        num_speakers=kw["num_speakers"], min_speakers=kw["min_speakers"], max_speakers=kw["max_speakers"],
        speakers_dir=kw["speakers_dir"], names=parse_names(kw["names"]) if kw["names"] else {},
        device=kw["device"], compute_type=kw.get("compute_type"), beam_size=kw.get("beam_size"),
        threads=kw.get("threads"), vad=kw.get("vad"), prompt=kw.get("prompt"),
        speaker_hotwords=bool(kw.get("speaker_hotwords")),
        hotwords=tuple(w.strip() for w in (kw.get("hotwords") or "").split(",") if w.strip()),
        **({"match_threshold": kw["match_threshold"]} if kw["match_threshold"] is not None else {}),
        voices=library_for(kw),
    )


def library_for(kw: dict):
    """The voice library snapshot naming uses (voices.for_naming), or None: --speakers or --no-voices given."""
    if kw.get("voices_dir") is not None and (kw["speakers_dir"] is not None or kw.get("no_voices")):
        raise UsageError(f"--voices contradicts {'--speakers' if kw['speakers_dir'] is not None else '--no-voices'}"
                         ": choose one")
    if kw["speakers_dir"] is not None or kw.get("no_voices"):
        return None
    from ..voices import for_naming

    return for_naming(kw.get("voices_dir"), kw.get("index_dir"))


def preflight(probes, options, out_dir: Path, index_dir: Path | None) -> None:
    """What can fail after minutes of decoding and recognition, checked before: every voice sample is a
    readable recording, and every place results go (--out, --index, the temporary folder, with room for
    the longest recording's decoded samples) takes a file."""
    import tempfile

    from .. import audio as audio_io
    from ..files import check_writable

    if options.speakers_dir is not None:
        from ..speakers import enrollment_clips

        for clips in enrollment_clips(options.speakers_dir).values():
            for clip in clips:
                audio_io.probe(clip)
    check_writable(out_dir, "--out")
    if index_dir is not None:
        check_writable(index_dir, "--index")
    longest = max((p.duration or 0.0 for p in probes), default=0.0)
    check_writable(tempfile.gettempdir(), "temporary folder (TMPDIR)",
                   need=int(longest * audio_io.SAMPLE_RATE * 4))  # decoded: float32 samples


@click.command("transcribe")
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder for <episode>.<ext> outputs.")
@click.option("--episode", help="Episode id (one input only) [default: file stem].")
@click.option("--strict", is_flag=True,
              help="A recording that decodes with errors is an error (exit 2), not a transcript marked damaged.")
@click.option("--verbose", type=click.BOOL, is_flag=False, flag_value=True, default=True, show_default=True,
              help="False: no progress bar and no summary line (errors and warnings still show).")
@click.option("--force", is_flag=True,
              help="Start over: redo every stage instead of reusing what an earlier run finished (<out>/.majlis/), "
                   "and overwrite a transcript corrected in `majlis serve --edit`.")
@engine_options
def transcribe_command(audio: tuple[Path, ...], out_dir: Path, episode: str | None, verbose: bool, force: bool,
                       strict: bool, **kw) -> None:
    """Transcribe recordings (any format ffmpeg reads) into speaker-attributed, word-timed transcripts."""
    from .. import audio as audio_io
    from ..pipeline import Engines, index_stage, transcribe_file
    from ..stagecache import StageCache
    from ..export import parse_formats, write_transcript

    if episode and len(audio) > 1:
        raise UsageError("--episode names one episode: give one AUDIO file with it")
    formats = parse_formats(kw["formats"])
    exports = build_exports(kw)
    options = build_options(kw)
    probes = [audio_io.probe(path) for path in audio]  # every input is checked before any model loads
    preflight(probes, options, out_dir, kw["index_dir"])
    from ..edits import refuse_if_edited

    for path in audio:  # corrections made in `majlis serve --edit` are not overwritten unasked
        refuse_if_edited(out_dir / f"{episode or path.stem}.json", force)
    loading = f"loading models (asr {options.asr}, diarizer {options.diarizer})"
    with status(loading, enabled=None if verbose else False):
        engines = Engines.load(options)
    stages = {s: w for s, w in WEIGHTS.items() if s != "diarize" or options.diarizer != "none"}
    index = None
    if kw["index_dir"] is not None:
        from ..search import Index

        index = Index(kw["index_dir"], create=True)
    failures = 0
    for path in audio:
        try:
            with progress_hook(path.name, enabled=None if verbose else False, stages=stages) as hook:
                transcript = transcribe_file(path, episode=episode, options=options, engines=engines, hook=hook,
                                             cache=StageCache(out_dir, force=force, hook=hook))
            if strict and transcript.damage is not None:
                raise AudioError(f"{path}: damaged ({transcript.damage.first_error}; --strict: nothing written)")
            written = write_transcript(transcript, out_dir, formats, options=exports)
            if index is not None:
                index_stage(index, transcript.episode, written, transcript)
        except MajlisError as e:
            if len(audio) == 1:
                raise
            failures += 1
            click.echo(f"majlis: error: {worded(e)}", err=True)
            continue
        if not verbose:
            continue
        words = sum(len(s.words) for s in transcript.segments)
        damaged = " (damaged: decoded with errors, concealed)" if transcript.damage is not None else ""
        if transcript.metadata.get("voice_library_version"):
            damaged += f" (voice library version {transcript.metadata['voice_library_version']})"
        click.echo(
            f"{transcript.episode}: {transcript.duration:.1f} s, {len(transcript.segments)} segments, {words} words, "
            f"speakers {', '.join(transcript.speakers) or '-'}{damaged} -> {', '.join(str(p) for p in written)}"
        )
    if failures:
        raise SystemExit(2)


commands = [transcribe_command]
