"""Is a recording whole? ffmpeg decodes a cut-off file without complaint more often than not; these read the
container itself: the last MP3 frame or Ogg page against the end of the file, a WAV's data size, an MP4's
boxes. audio.probe and audio.decode ask container_cut; why_missing words a missing file."""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path


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


def why_missing(p: Path) -> str:
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


def container_cut(path: Path, codec: str) -> str | None:
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
