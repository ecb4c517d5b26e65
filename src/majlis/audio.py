"""Probe and decode any ffmpeg-readable recording, once, to 16 kHz mono float32.

The system ffmpeg is used when present, else the binary that imageio-ffmpeg ships (no root needed);
export/clips.py points pydub at the same binary so clips are cut by the same decoder.

ffmpeg decodes a cut-off file without complaint more often than not, so decode() also checks the file is
whole: the decoded length against the length the header promises, and for MP3 and Ogg (whose headers often
promise nothing) the last frame or page against the end of the file (containers.py).

The decoded samples go to a temporary file and come back mapped, read-only: a 4-hour recording is 0.9 GB of
float32, and a stage that walks it in blocks calling release() keeps only the block it is on in memory. The
file is removed when the last array that maps it goes away.
"""

from __future__ import annotations

import functools
import logging
import mmap
import os
import re
import shutil
import subprocess
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .containers import container_cut, why_missing
from .errors import AudioError
from .types import Damage

log = logging.getLogger("majlis")

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
    return found


@dataclass(frozen=True)
class Probe:
    path: Path
    duration: float | None  # seconds, from the container; None when it does not say
    codec: str
    sample_rate: int | None
    channels: str
    # ffmpeg guessed the duration from file size and bitrate (MP3 without a Xing header): no promise.
    estimated: bool = False
    # A moving picture beside the sound (cover art does not count): the container's duration may be the
    # picture's, longer than the sound's.
    video: bool = False


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_AUDIO_STREAM = re.compile(r"Stream #\S+.*?: Audio: (\w+)[^,\n]*(?:, (\d+) Hz)?(?:, ([^,\n]+))?")
_VIDEO_STREAM = re.compile(r"Stream #\S+.*?: Video: (?!.*\(attached pic\)).*")
_CONTEXT = re.compile(r"^\[[^\]]* @ (?:0x)?[0-9a-f]+\]\s*")  # "[mp3 @ 0x55...] " on ffmpeg log lines
_CUT_OFF = ("moov atom not found", "end of file", "truncat", "prematurely", "partial file")


def _messages(stderr: str, path: Path) -> list[str]:
    """ffmpeg's log lines without their "[demuxer @ 0x..]" and "PATH:" prefixes."""
    out = []
    for ln in stderr.splitlines():
        ln = _CONTEXT.sub("", ln.strip())
        if ln.startswith(str(path) + ":"):
            ln = ln[len(str(path)) + 1 :].strip()
        if ln:
            out.append(ln)
    return out


def _unreadable(stderr: str, path: Path) -> str:
    lines = _messages(stderr, path)
    text = " ".join(lines).lower()
    for ln in lines:
        if any(k in ln.lower() for k in _CUT_OFF):
            return f"damaged or truncated ({ln})"
    if "invalid data" in text or "misdetection" in text or "invalid argument" in text:
        return "not an audio or video file ffmpeg can read"
    return f"ffmpeg cannot read it ({lines[-1] if lines else 'no message'})"


def probe(path: str | os.PathLike) -> Probe:
    """Check that `path` is a readable recording with an audio stream, without decoding it."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: {why_missing(p)}")
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
    # A container cut inside its index reads as garbage, as no audio, or as audio that is not there.
    cut = container_cut(p, "")
    if cut:
        raise AudioError(f"{p}: truncated ({cut})")
    m = _AUDIO_STREAM.search(err)
    if "Input #0" not in err:
        raise AudioError(f"{p}: {_unreadable(err, p)}")
    if not m:
        raise AudioError(f"{p}: has no audio stream")
    d = _DURATION.search(err)
    duration = int(d[1]) * 3600 + int(d[2]) * 60 + float(d[3]) if d else None
    return Probe(
        p, duration, m[1], int(m[2]) if m[2] else None, (m[3] or "").strip(),
        estimated="Estimating duration from bitrate" in err,
        video=bool(_VIDEO_STREAM.search(err)),
    )


# --- decoding -----------------------------------------------------------------------------------------


PIPE_BLOCK = 1 << 20  # bytes of ffmpeg output copied at a time


def _run_decoder(cmd: list[str], out) -> tuple[int, int, str]:
    """Copy ffmpeg's f32le output into the open file `out` a block at a time; (bytes, exit code, stderr)."""
    written = 0
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            while block := proc.stdout.read(PIPE_BLOCK):
                out.write(block)
                written += len(block)
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        errf.seek(0)
        stderr = errf.read().decode("utf-8", "replace")
    return written, rc, stderr


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


DECODED_PREFIX = "majlis-decoded-"


def _sweep_orphans(folder: str) -> None:
    """Remove decoded files left by processes that died without cleaning up (kill -9, power cut): each
    name carries its process id, and only the files of processes that no longer run are touched."""
    for entry in Path(folder).glob(f"{DECODED_PREFIX}*.f32"):
        pid = entry.name[len(DECODED_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _unlink(str(entry))
        except OSError:
            pass  # alive, under another user


def scratch_file() -> tuple[int, str]:
    """(fd, path) of a new temporary file for samples, named so that if this process dies before removing
    it, the next decode in any process sweeps it away."""
    _sweep_orphans(tempfile.gettempdir())
    return tempfile.mkstemp(prefix=f"{DECODED_PREFIX}{os.getpid()}-", suffix=".f32")


def _mapped(path: str, count: int) -> np.ndarray:
    """The file's float32 samples, mapped read-only; the file goes when the last array using it does."""
    if count == 0:
        _unlink(path)
        return np.zeros(0, np.float32)
    samples = np.memmap(path, dtype=np.float32, mode="r", shape=(count,))
    weakref.finalize(samples, _unlink, path)
    return samples


def backing_file(samples: np.ndarray) -> str | None:
    """The file of float32 samples a decoded array maps whole, or None (arrays in memory, slices)."""
    if (isinstance(samples, np.memmap) and samples.dtype == np.float32 and samples.ndim == 1
            and samples.strides == (4,) and samples.offset == 0 and getattr(samples, "filename", None)):
        base = samples.base
        if isinstance(base, mmap.mmap) and len(base) == samples.nbytes:
            return samples.filename
    return None


def release(samples: np.ndarray) -> None:
    """Let go of the pages of a mapped recording read so far (they stay in the file and the page cache, and a
    later read maps them again). Long stages call this after each block so memory stays flat. No effect
    on arrays in memory."""
    base = samples
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None and len(base):
        base.madvise(mmap.MADV_DONTNEED)


# Samples a long stage reads at a time (100 s): a whole multiple of every 10-ms frame size in use, and small
# enough that a float64 copy of one block is nothing (of 4 hours it would be 1.8 GB).
BLOCK = 100 * SAMPLE_RATE


def blocks(samples: np.ndarray, size: int = BLOCK):
    """(offset, block) over `samples`, `size` samples at a time, releasing what was read after each block."""
    for i in range(0, len(samples), size):
        yield i, samples[i : i + size]
        release(samples)


def decode(path: str | os.PathLike, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream to mono float32 at `sample_rate`, checking it is whole. The array is
    read-only and maps a temporary file (see the module's docstring)."""
    info = probe(path)
    p = info.path
    cut = container_cut(p, info.codec)
    if cut:
        raise AudioError(f"{p}: truncated ({cut})")
    cmd = [
        ffmpeg_binary(), "-hide_banner", "-nostdin", "-v", "error",
        "-i", str(p), "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "-",
    ]
    fd, tmp = scratch_file()
    try:
        with os.fdopen(fd, "wb") as out:
            nbytes, rc, stderr = _run_decoder(cmd, out)
    except OSError as e:  # the temporary folder is full or gone
        _unlink(tmp)
        raise AudioError(f"{p}: cannot decode into {tempfile.gettempdir()} ({e.strerror or e})") from None
    except BaseException:
        _unlink(tmp)
        raise
    samples = _mapped(tmp, nbytes // 4)
    problems = _messages(stderr, p)
    if rc != 0:
        raise AudioError(f"{p}: damaged or truncated ({problems[-1] if problems else f'ffmpeg exit {rc}'})")
    decoded = len(samples) / sample_rate
    if info.duration and not info.estimated:
        missing = info.duration - decoded
        # Decoder errors and audio missing: damage. A glitch that costs a few frames in the middle of a
        # long recording is concealed and let through; without errors only a clear shortfall counts,
        # since some containers' durations are rounded or include the encoder's padding.
        if problems and missing > 0.2 + 0.005 * info.duration:
            raise AudioError(
                f"{p}: damaged or truncated ({problems[0]}; header says {info.duration:.2f} s, "
                f"only {decoded:.2f} s decodable)"
            )
        if missing > 0.5 + 0.05 * info.duration and not info.video:
            raise AudioError(f"{p}: truncated (header says {info.duration:.1f} s, only {decoded:.1f} s decodable)")
    if len(samples) == 0 and (info.duration or 0) > 0.1:
        raise AudioError(f"{p}: no decodable audio ({problems[0] if problems else 'empty audio stream'})")
    if problems:
        log.warning("%s: decoded with errors, damaged parts concealed (%s)", p, problems[0])
        missing = None
        if info.duration and not info.estimated:
            missing = max(0.0, info.duration - decoded)
        _DAMAGE[id(samples)] = Damage(len(problems), problems[0], missing)
        weakref.finalize(samples, _DAMAGE.pop, id(samples), None)
    return samples


_DAMAGE: dict[int, Damage] = {}


def damage_of(samples: np.ndarray) -> Damage | None:
    """What decode() concealed in these samples, or None if they decoded cleanly."""
    return _DAMAGE.get(id(samples))


def is_audio_path(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS
