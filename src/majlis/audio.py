"""Probe and decode any ffmpeg-readable recording, once, to 16 kHz mono float32.

The system ffmpeg is used when present, else the binary that imageio-ffmpeg ships (no root needed);
pydub is pointed at the same binary so clips are cut by the same decoder.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .mp3 .m4a .aac .ogg .oga .opus .wma .aif .aiff .amr .webm .mp4 .m4v .mkv .mov .avi .mpg .mpeg .ts".split()
)


@functools.lru_cache(maxsize=1)
def ffmpeg_binary() -> str:
    found = os.environ.get("MAJLIS_FFMPEG") or shutil.which("ffmpeg")
    if not found:
        try:
            import imageio_ffmpeg

            found = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception as e:  # imageio-ffmpeg raises RuntimeError when its binary is absent
            raise AudioError(f"no ffmpeg found: install ffmpeg or imageio-ffmpeg ({e})") from None
    try:
        from pydub import AudioSegment

        AudioSegment.converter = found
    except ImportError:
        pass
    return found


@dataclass(frozen=True)
class Probe:
    path: Path
    duration: float | None  # seconds, from the container; None when it does not say
    codec: str
    sample_rate: int | None
    channels: str


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_AUDIO_STREAM = re.compile(r"Stream #\S+.*?: Audio: (\w+)[^,\n]*(?:, (\d+) Hz)?(?:, ([^,\n]+))?")


def _first_error_line(stderr: str, path: Path) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    name = str(path)
    for ln in reversed(lines):
        if ln.startswith(name + ":"):
            return ln[len(name) + 1 :].strip()
    return lines[-1] if lines else "unknown ffmpeg error"


def probe(path: str | os.PathLike) -> Probe:
    """Check that `path` is a readable recording with an audio stream, without decoding it."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, not a recording")
    try:
        size = p.stat().st_size
        with open(p, "rb"):
            pass
    except OSError as e:
        raise AudioError(f"{p}: cannot be read ({e.strerror})") from None
    if size == 0:
        raise AudioError(f"{p}: empty file (0 bytes)")
    proc = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(p)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    err = proc.stderr
    if "Input #0" not in err:
        cause = _first_error_line(err, p)
        if "Invalid data" in cause:
            cause = "not an audio or video file ffmpeg can read"
        raise AudioError(f"{p}: {cause}")
    m = _AUDIO_STREAM.search(err)
    if not m:
        raise AudioError(f"{p}: has no audio stream")
    d = _DURATION.search(err)
    duration = int(d[1]) * 3600 + int(d[2]) * 60 + float(d[3]) if d else None
    return Probe(p, duration, m[1], int(m[2]) if m[2] else None, (m[3] or "").strip())


def decode(path: str | os.PathLike, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream to mono float32 at `sample_rate`, checking it is whole."""
    info = probe(path)
    proc = subprocess.run(
        [
            ffmpeg_binary(), "-hide_banner", "-nostdin", "-v", "error", "-xerror",
            "-i", str(info.path), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "-",
        ],
        capture_output=True,
    )
    samples = np.frombuffer(proc.stdout, dtype=np.float32)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise AudioError(f"{info.path}: damaged or truncated ({_first_error_line(stderr, info.path)})")
    decoded = len(samples) / sample_rate
    # A truncated file often decodes "successfully" to less audio than its header promises.
    if info.duration and info.duration > 1.0 and decoded < 0.9 * info.duration - 0.5:
        raise AudioError(
            f"{info.path}: truncated (header says {info.duration:.1f} s, only {decoded:.1f} s decodable)"
        )
    if len(samples) == 0 and (info.duration or 0) > 0.1:
        raise AudioError(f"{info.path}: no decodable audio")
    return samples.copy()


def is_audio_path(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS
