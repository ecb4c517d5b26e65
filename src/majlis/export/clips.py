"""Cutting the audio of a hit out of its recording (pydub on the same ffmpeg that decodes)."""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from pathlib import Path

from ..errors import AudioError, UsageError

# Output extension -> (ffmpeg muxer, codec or None for the muxer's default)
FORMATS = {
    ".mp3": ("mp3", None),
    ".wav": ("wav", None),
    ".flac": ("flac", None),
    ".ogg": ("ogg", "libvorbis"),
    ".oga": ("ogg", "libvorbis"),
    ".opus": ("opus", "libopus"),
    ".m4a": ("ipod", "aac"),
}


def clip_format(out_path: str | os.PathLike) -> tuple[str, str | None]:
    suffix = Path(out_path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{out_path}: unknown clip format {suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def cut_clip(audio_path: str | os.PathLike, start: float, end: float, out_path: str | os.PathLike, *,
             pad: float = 0.25) -> Path:
    """Write [start - pad, end + pad] of `audio_path` (clamped to the recording) to `out_path`, atomically.

    The output format follows the extension of `out_path`.
    """
    from .. import audio

    src, out = Path(audio_path), Path(out_path)
    if not (0 <= start < end):
        raise UsageError(f"clip needs 0 <= start < end (got start {start:g}, end {end:g})")
    fmt, codec = clip_format(out)
    info = audio.probe(src)  # a clear AudioError for missing / unreadable recordings
    if info.duration is not None and start >= info.duration:
        raise UsageError(f"clip start {start:g} s is past the end of {src} ({info.duration:.1f} s)")
    # pydub warns at import about audioop (deprecated) and about ffmpeg missing from PATH (we tell it which
    # binary below): neither is the user's concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        from pydub import AudioSegment
        from pydub.exceptions import CouldntDecodeError
    AudioSegment.converter = audio.ffmpeg_binary()

    lo = max(0.0, start - pad)
    hi = end + pad if info.duration is None else min(info.duration, end + pad)
    # pydub asks ffprobe for the sample format unless told the decoder; without ffprobe, name it ourselves.
    decoder = None if shutil.which("ffprobe") else info.codec
    try:
        clip = AudioSegment.from_file(str(src), codec=decoder, start_second=lo, duration=hi - lo)
    except CouldntDecodeError as e:
        raise AudioError(f"{src}: cannot cut a clip ({str(e).strip().splitlines()[-1]})") from None
    if len(clip) == 0:
        raise AudioError(f"{src}: no audio between {lo:.2f} s and {hi:.2f} s")

    out.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name rather than mkstemp: the clip gets ordinary (umask) permissions, not mkstemp's 0600.
    tmp = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{out.suffix}"
    try:
        handle = clip.export(str(tmp), format=fmt, codec=codec)
        handle.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, Exception) and not isinstance(e, (AudioError, UsageError)):
            lines = [ln for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
            raise AudioError(f"{out}: cannot write the clip ({lines[-1].strip()})") from None
        raise
    return out
