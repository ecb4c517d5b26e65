"""Probe and decode any ffmpeg-readable recording, once, to 16 kHz mono float32.

The system ffmpeg is used when present, else the binary that imageio-ffmpeg ships (no root needed);
clips.py points pydub at the same binary so clips are cut by the same decoder.

ffmpeg decodes a cut-off file without complaint more often than not, so decode() also checks the file is
whole: the decoded length against the length the header promises, and for MP3 and Ogg (whose headers often
promise nothing) the last frame or page against the end of the file.

The decoded samples go to a temporary file and come back mapped, read-only: a 4-hour recording is 0.9 GB of
float32, and a stage that walks it in blocks calling release() keeps only the block it is on in memory. The
file is removed when the last array that maps it goes away.
"""

from __future__ import annotations

import errno
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
        raise AudioError(f"{p}: {_why_missing(p)}")
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
    cut = _container_cut(p, "")
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


# --- is the file whole? -------------------------------------------------------------------------------

_MP3_KBPS = {
    (1, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_TAIL = 256 * 1024  # longer than any MP3 frame or Ogg page


def _mp3_frame(buf, pos: int) -> tuple[tuple[int, int, int], int] | None:
    """(version, layer, rate) and length in bytes of the MPEG audio frame at pos, or None."""
    if pos + 4 > len(buf) or buf[pos] != 0xFF or (buf[pos + 1] & 0xE0) != 0xE0:
        return None
    b1, b2 = buf[pos + 1], buf[pos + 2]
    version, layer_bits, br_i, sr_i = (b1 >> 3) & 3, (b1 >> 1) & 3, b2 >> 4, (b2 >> 2) & 3
    if version == 1 or layer_bits == 0 or br_i in (0, 15) or sr_i == 3:
        return None  # reserved values, or free format whose frame length the header does not give
    layer = 4 - layer_bits
    kbps = _MP3_KBPS[(1 if version == 3 else 2, layer)][br_i - 1]
    rate = _MP3_RATES[version][sr_i]
    pad = (b2 >> 1) & 1
    if layer == 1:
        size = (12 * kbps * 1000 // rate + pad) * 4
    else:
        size = (72 if layer == 3 and version != 3 else 144) * kbps * 1000 // rate + pad
    return (version, layer, rate), size


def _mp3_cut(buf) -> str | None:
    """Whether the last MP3 frame is cut off. None also when the file does not say (odd tail data)."""
    size = len(buf)
    start = 0
    if buf[:3] == b"ID3" and size >= 10:
        start = 10 + ((buf[6] & 0x7F) << 21 | (buf[7] & 0x7F) << 14 | (buf[8] & 0x7F) << 7 | (buf[9] & 0x7F))
    pos = max(start, size - _TAIL)
    # Find a frame that starts a chain of four, so a stray 0xFF byte in the data is not taken for a header.
    while pos < size - 4:
        first = _mp3_frame(buf, pos)
        if first:
            chain, p = 0, pos
            while chain < 4 and (f := _mp3_frame(buf, p)) and f[0] == first[0]:
                p += f[1]
                chain += 1
            if chain == 4 or (chain >= 2 and p >= size):
                break
        pos += 1
    else:
        return None
    kind = _mp3_frame(buf, pos)[0]
    while pos < size:
        rest = size - pos
        if (rest == 128 and buf[pos : pos + 3] == b"TAG") or buf[pos : pos + 8] in (b"APETAGEX", b"LYRICSBE"):
            return None
        f = _mp3_frame(buf, pos)
        if f is None or f[0] != kind:
            if rest < 4 and buf[pos] == 0xFF:
                return "the last MP3 frame header is cut off"
            return None
        if f[1] > rest:
            return f"the last MP3 frame is cut off ({rest} of {f[1]} bytes)"
        pos += f[1]
    return None


def _ogg_cut(buf) -> str | None:
    """Whether the last Ogg page is cut off or the stream never ends (no end-of-stream page)."""
    size = len(buf)
    pos = buf.find(b"OggS", max(0, size - _TAIL))
    while pos != -1:
        p, chain, cut = pos, 0, False
        while buf[p : p + 4] == b"OggS":
            nseg = buf[p + 26] if p + 27 <= size else 0
            length = 27 + nseg + sum(buf[p + 27 : p + 27 + nseg])
            if p + 27 > size or p + 27 + nseg > size or p + length > size:
                cut = True
                break
            last, p, chain = p, p + length, chain + 1
        if chain and p == size:
            return None if buf[last + 5] & 0x04 else "the Ogg stream has no end-of-stream page"
        if cut and chain >= 2:
            return "the last Ogg page is cut off"
        if chain >= 2:
            return None  # something other than Ogg pages follows: not ours to judge
        pos = buf.find(b"OggS", pos + 1)
    return None


def _wav_cut(buf) -> str | None:
    """Whether the WAV data chunk holds fewer bytes than its header says."""
    pos, size = 12, len(buf)
    while pos + 8 <= size:
        cid, length = buf[pos : pos + 4], int.from_bytes(buf[pos + 4 : pos + 8], "little")
        if cid == b"data":
            if length in (0, 0xFFFFFFFF):
                return None  # written while streaming: the size was never filled in
            have = size - pos - 8
            return f"the data chunk promises {length} bytes, the file holds {have}" if have < length else None
        pos += 8 + length + (length & 1)
    return None


def _why_missing(p: Path) -> str:
    """Why a path that does not exist (for Path.exists) is not there: no such file, a link loop, a broken link."""
    try:
        os.stat(p)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop (the links point at each other, never at a file)"
        if p.is_symlink():
            return f"a broken symbolic link (to {os.readlink(p)}, which does not exist)"
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):
            return f"cannot be read ({e.strerror})"
    return "no such file"


def _mp4_cut(buf) -> str | None:
    """The top-level box of an MP4/M4A/MOV cut off by the end of the file, when it is not the audio itself
    (a cut mdat is left to the decoder: what precedes the cut decodes)."""
    pos, n = 0, len(buf)
    while pos + 8 <= n:
        size, kind = int.from_bytes(buf[pos:pos + 4], "big"), bytes(buf[pos + 4:pos + 8])
        head = 8
        if size == 1 and pos + 16 <= n:
            size, head = int.from_bytes(buf[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            return None
        if size < head:
            return None
        if pos + size > n:
            if kind == b"mdat":
                return None
            name = kind.decode("latin-1")
            return f"its '{name}' box{', the index of the audio,' if kind == b'moov' else ''} is cut off after " \
                   f"{n - pos:,} of {size:,} bytes"
        pos += size
    return None


def _container_cut(path: Path, codec: str) -> str | None:
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if buf[4:8] == b"ftyp":
                return _mp4_cut(buf)
            if buf[:4] == b"OggS":
                return _ogg_cut(buf)
            if buf[:4] == b"RIFF" and buf[8:12] == b"WAVE":
                return _wav_cut(buf)
            if codec == "mp3" and (buf[:3] == b"ID3" or _mp3_frame(buf, 0)):
                return _mp3_cut(buf)
    except (OSError, ValueError):
        return None
    return None


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
    cut = _container_cut(p, info.codec)
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
