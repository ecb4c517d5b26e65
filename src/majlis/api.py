"""The Python API behind `import majlis`: one call from a recording to a Transcript.

    import majlis
    t = majlis.transcribe("talk.m4a", speakers="voices/")
    t.write("out/", formats=["srt", "vtt"])
    hits = majlis.Index("index/").search('"exact phrase"', speaker="Tolibov")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from .errors import UsageError
from .types import ProgressHook, Transcript


def transcribe(
    audio: str | os.PathLike,
    *,
    speakers: str | os.PathLike | None = None,
    names: Mapping[str, str] | str | None = None,
    asr: str = "auto",
    model: str | None = None,
    language: str | None = None,
    task: str = "transcribe",
    diarizer: str = "auto",
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    device: str | None = None,
    episode: str | None = None,
    hook: ProgressHook | None = None,
    **engine_options,
) -> Transcript:
    """Transcribe one recording (anything ffmpeg reads) into a speaker-attributed, word-timed Transcript.

    `speakers`: a folder of voice samples (DIR/<Name>.<ext> or DIR/<Name>/*.<ext>) that names speakers by voice;
    `names`: {"SPEAKER_00": "Tahir"} or "SPEAKER_00=Tahir,..." by hand. `asr` is auto|whisper|sphinx, `diarizer`
    auto|pyannote|builtin|none, `language` a code or name ("en", "Uzbek"; None detects). Further keywords are
    fields of majlis.pipeline.Options (model_dir, hf_token, match_threshold, voices: a voice library folder
    to name speakers from when `speakers` is None, ...). `hook(stage, done, total)`
    receives progress. Models load for this call and are released after it.

    Returns the Transcript (write it with .write(), index it with majlis.Index(...).add([t])).
    Raises AudioError (unreadable recording), UsageError (bad option, unknown language, missing speakers
    folder), ModelError (an engine or its weights cannot load); all are majlis.MajlisError.
    """
    from . import audio as audio_io
    from .languages import language_code
    from .pipeline import Engines, Options, transcribe_file
    from .speakers import parse_names

    speakers_dir = Path(speakers) if speakers is not None else None
    if speakers_dir is not None and not speakers_dir.is_dir():
        raise UsageError(f"speakers={str(speakers)!r}: not a folder of voice samples")
    if isinstance(names, str):
        names = parse_names(names)
    if isinstance(engine_options.get("voices"), (str, os.PathLike)):  # a voice library folder
        from .voices import for_naming

        engine_options["voices"] = for_naming(engine_options["voices"], None)
    try:
        options = Options(asr=asr, model=model, language=language_code(language), task=task, diarizer=diarizer,
                          num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers,
                          speakers_dir=speakers_dir, names=dict(names or {}), device=device, **engine_options)
    except TypeError as e:  # an unknown keyword
        raise UsageError(f"transcribe(): {e}") from None
    audio_io.probe(audio)  # a bad file fails before any model loads
    engines = Engines.load(options)
    try:
        return transcribe_file(audio, episode=episode, options=options, engines=engines, hook=hook)
    finally:
        engines.close()
