"""Split a recording at its pauses into chunks an engine can decode one by one.

Energy only (10 ms frames, thresholds relative to the recording's own noise floor and speech level), so it
costs next to nothing and needs no model. Long silences are left out of every chunk: engines neither spend
time on them nor get a chance to invent words there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE, blocks

FRAME = 160  # 10 ms
FRAMES_PER_SECOND = SAMPLE_RATE // FRAME

# Whole-signal RMS below this (about -74 dBFS) is digital silence or a disconnected input, never speech.
SILENCE_RMS = 2e-4
# Frames this quiet are pauses whatever the recording's level.
ABS_QUIET_DB = -65.0
# A pause longer than this always ends a chunk, so no engine is handed seconds of silence to fill.
MAX_INNER_PAUSE = 2.0


@dataclass(frozen=True)
class Chunk:
    start: int  # sample offsets into the recording
    end: int

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE


def is_silent(samples: np.ndarray) -> bool:
    if samples.size == 0:
        return True
    total = sum(float(np.dot(b.astype(np.float64), b.astype(np.float64))) for _, b in blocks(samples))
    return (total / samples.size) ** 0.5 < SILENCE_RMS


def frame_db(samples: np.ndarray) -> np.ndarray:
    """Energy of each 10 ms frame in dB, after pre-emphasis.

    Pre-emphasis (x[n] - 0.97 x[n-1]) flattens the spectrum of hum, rumble and pink or brown noise, whose
    loudness otherwise swings by several dB from frame to frame and passes for speech; speech keeps its
    contrast between syllables and pauses.
    """
    n = len(samples) // FRAME
    out = np.empty(n)
    prev = 0.0
    for i, block in blocks(samples[: n * FRAME]):
        x = block.astype(np.float64)
        emph = np.empty_like(x)
        emph[0] = x[0] - 0.97 * prev
        emph[1:] = x[1:] - 0.97 * x[:-1]
        prev = x[-1]
        frames = emph.reshape(-1, FRAME)
        out[i // FRAME : i // FRAME + len(frames)] = np.einsum("ij,ij->i", frames, frames) / FRAME
    return 10.0 * np.log10(out + 1e-12)


def _quiet_mask(db: np.ndarray) -> np.ndarray:
    floor = float(np.percentile(db, 10))
    loud = float(np.percentile(db, 95))
    # A third of the way from the noise floor to the speech level, but at least 6 dB above the floor:
    # soft consonants stay in, room tone between sentences does not.
    threshold = max(floor + 6.0, floor + (loud - floor) / 3.0)
    return (db < threshold) | (db < ABS_QUIET_DB)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame runs where mask is True."""
    if mask.size == 0:
        return []
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def speech_regions(
    samples: np.ndarray, *, min_gap: float = 0.3, pad: float = 0.15, db: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Frame spans of sound separated by pauses of at least `min_gap` seconds, each padded into its pauses."""
    if is_silent(samples):
        return []
    db = frame_db(samples) if db is None else db
    if db.size == 0:
        return []
    quiet = _quiet_mask(db)
    gap = int(round(min_gap * FRAMES_PER_SECOND))
    for a, b in _runs(quiet):
        if b - a < gap and a > 0 and b < len(quiet):
            quiet[a:b] = False  # short dips inside speech belong to it
    # Clicks shorter than 50 ms are not speech.
    regions = [(a, b) for a, b in _runs(~quiet) if b - a >= 5]
    p = int(round(pad * FRAMES_PER_SECOND))
    out: list[tuple[int, int]] = []
    for a, b in regions:
        a, b = max(0, a - p), min(len(db), b + p)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _split_long(db: np.ndarray, a: int, b: int, max_frames: int, min_frames: int) -> list[tuple[int, int]]:
    """Cut [a, b) at its quietest moments until no piece is longer than max_frames."""
    if b - a <= max_frames:
        return [(a, b)]
    lo, hi = a + min_frames, min(b - min_frames, a + max_frames)
    if hi <= lo:
        lo, hi = a + 1, a + max_frames
    # Smooth over 100 ms so one quiet frame inside a vowel is not mistaken for a pause.
    smooth = np.convolve(db[a:b], np.ones(10) / 10.0, mode="same")
    cut = lo + int(np.argmin(smooth[lo - a : hi - a]))
    return [(a, cut)] + _split_long(db, cut, b, max_frames, min_frames)


def chunk(
    samples: np.ndarray,
    *,
    target: float = 20.0,
    max_len: float = 30.0,
    min_gap: float = 0.3,
    pad: float = 0.15,
) -> list[Chunk]:
    """Group speech regions into chunks of up to `target` seconds, never longer than `max_len`.

    Chunks start and end inside pauses and hold no pause longer than MAX_INNER_PAUSE; a region with no
    pause for `max_len` seconds is cut at its quietest point.
    """
    db = frame_db(samples)
    regions = speech_regions(samples, min_gap=min_gap, pad=pad, db=db)
    if not regions:
        return []
    target_f = int(target * FRAMES_PER_SECOND)
    max_f = int(max_len * FRAMES_PER_SECOND)
    groups: list[tuple[int, int]] = []
    for a, b in regions:
        if groups and b - groups[-1][0] <= target_f and a - groups[-1][1] <= MAX_INNER_PAUSE * FRAMES_PER_SECOND:
            groups[-1] = (groups[-1][0], b)
        else:
            groups.append((a, b))
    frames: list[tuple[int, int]] = []
    for a, b in groups:
        frames.extend(_split_long(db, a, b, max_f, min(max_f // 3, 5 * FRAMES_PER_SECOND)))
    n = len(samples)
    chunks = [Chunk(a * FRAME, min(n, b * FRAME)) for a, b in frames]
    if chunks and len(samples) - chunks[-1].end < FRAME:
        chunks[-1] = Chunk(chunks[-1].start, n)  # keep the sub-frame tail
    return chunks
