"""Speech detection with Silero VAD (the ONNX model in faster-whisper's wheel, run by onnxruntime).

An energy threshold cannot tell a quiet "Hello?" from room noise, nor a cough from a word; Silero's
probability can, and the diarizer keeps it per 10 ms frame: low probability marks the pauses where a
speaker change is likely.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from ..audio import BLOCK, SAMPLE_RATE, blocks, release

log = logging.getLogger("majlis")

CHUNK = 512  # samples per Silero step (32 ms at 16 kHz)
CONTEXT = 64  # samples of the previous chunk each step also sees
HOP = 160  # our 10 ms frames
ON, OFF = 0.5, 0.35  # Silero's own hysteresis: speech starts above ON, ends below OFF
PAD = 3  # frames added either side of each region: Silero's onsets come a chunk late
MIN_REGION = 10  # frames: blips shorter than 0.1 s are clicks, not speech
FILL = 12  # frames: silences shorter than this stay inside a speech region


@functools.lru_cache(maxsize=1)
def _model():
    """faster-whisper's Silero VAD session, or None when faster-whisper (or onnxruntime) is missing."""
    try:
        from faster_whisper.vad import get_vad_model
    except ImportError as e:
        _reraise_interrupt(e)
        log.warning("speech detection: Silero VAD unavailable (%s); using the energy threshold", e)
        return None
    try:
        return get_vad_model()
    except Exception as e:  # a broken onnxruntime install: fall back rather than fail the file
        _reraise_interrupt(e)
        log.warning("speech detection: cannot load Silero VAD (%s); using the energy threshold", e)
        return None


def _reraise_interrupt(error: BaseException) -> None:
    """A Ctrl-C that lands while onnxruntime's extension imports comes back as an ImportError (wrapped by
    faster-whisper in a RuntimeError): it must still stop the program, not be taken for a missing package."""
    seen = error
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt) or "KeyboardInterrupt" in str(seen):
            raise KeyboardInterrupt from None
        seen = seen.__cause__ or seen.__context__


def available() -> bool:
    return _model() is not None


def speech_probability(samples: np.ndarray) -> np.ndarray | None:
    """Silero's speech probability for every 10 ms frame (len(samples) // 160 of them), or None without the
    model. Read a block at a time so hours of audio never sit in memory twice."""
    model = _model()
    if model is None:
        return None
    n_frames = len(samples) // HOP
    chunk_probs = []
    for _, block in blocks(samples, BLOCK):
        pad = (-len(block)) % CHUNK
        # The model writes into its input (it zeroes a context row): give it a copy, never the recording.
        x = np.concatenate([np.asarray(block, np.float32), np.zeros(pad, np.float32)])
        chunk_probs.append(np.asarray(model(x), np.float32).reshape(-1))
    probs = np.concatenate(chunk_probs) if chunk_probs else np.zeros(0, np.float32)
    if len(probs) == 0:
        return np.zeros(n_frames, np.float32)
    # Each 10 ms frame takes the chunk its centre falls in.
    at = np.minimum((np.arange(n_frames) * HOP + HOP // 2) // CHUNK, len(probs) - 1)
    return probs[at]


def speech_mask(prob: np.ndarray, *, fill: int = FILL, min_region: int = MIN_REGION) -> np.ndarray:
    """Speech frames from probabilities: hysteresis between ON and OFF, PAD frames around each region,
    silences shorter than `fill` frames filled, regions shorter than `min_region` dropped."""
    mask = _hysteresis(prob > ON, prob > OFF)
    padded = mask.copy()
    for s, e in _runs(mask):
        padded[max(0, s - PAD) : e + PAD] = True
    return _tidy(padded, fill, min_region)


def _hysteresis(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Each run above the lower mark, wherever it reaches the higher one somewhere."""
    mask = high.copy()
    for s, e in _runs(low):
        mask[s:e] |= mask[s:e].any()
    return mask


def _tidy(mask: np.ndarray, fill: int, min_region: int) -> np.ndarray:
    """Inner silences shorter than `fill` frames filled, then regions shorter than `min_region` dropped."""
    for s, e in _runs(~mask):
        if 0 < s and e < len(mask) and e - s < fill:
            mask[s:e] = True
    for s, e in _runs(mask):
        if e - s < min_region:
            mask[s:e] = False
    return mask


# ------------------------------------------------------------------- the energy detector (no Silero)



def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def detect_speech(samples: np.ndarray, db: np.ndarray | None = None) -> np.ndarray:
    """One bool per 10 ms frame. The threshold sits a quarter of the way from the noise floor to the loud
    speech level (at least 6 dB above the floor), with hysteresis; webrtcvad then vetoes loud regions with
    no voice in them (hum, clicks, music stings)."""
    if db is None:
        from ..voice import frame_db

        db = frame_db(samples)
    if len(db) == 0:
        return np.zeros(0, bool)
    floor, loud = np.percentile(db, 3), np.percentile(db, 97)
    if loud - floor < 10.0:  # no dynamic range: all silence (digital or noise) or all speech
        return np.full(len(db), loud > -50.0)
    high = floor + max(6.0, 0.25 * (loud - floor))
    low = high - 3.0
    # Each confident region grows while the level stays above the lower mark.
    return _vad_veto(samples, _tidy(_hysteresis(db > high, db > low), FILL, MIN_REGION))


def _vad_veto(samples: np.ndarray, mask: np.ndarray) -> np.ndarray:
    try:
        import webrtcvad
    except ImportError:
        return mask
    vad = webrtcvad.Vad(2)
    frame = 480  # 30 ms
    peak = max((float(np.abs(b).max()) for _, b in blocks(samples)), default=0.0)
    scale = 0.9 * 32767 / (peak or 1.0)
    out = mask.copy()
    read = 0
    for s, e in _runs(mask):
        piece = samples[s * HOP : max(e * HOP, s * HOP + frame)]
        read += len(piece)
        if read > BLOCK:
            release(samples)
            read = 0
        n = len(piece) // frame
        pcm = np.clip(piece[: n * frame] * scale, -32768, 32767).astype("<i2").tobytes()
        voiced = [vad.is_speech(pcm[i * frame * 2 : (i + 1) * frame * 2], SAMPLE_RATE) for i in range(n)]
        if voiced and sum(voiced) < 0.2 * len(voiced):
            out[s:e] = False
    return out
