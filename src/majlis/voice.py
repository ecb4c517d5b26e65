"""Voices heard by the speaker encoder (encoder.py, a numpy port of resemblyzer): a recording's speech mask and
the encoder's input (analyse), and unit embeddings of windows sliding over its speech (embed_windows). The
builtin diarizer takes its speech mask from here (its voice windows are CAM++'s, campplus.py); the per-word
re-check (attribution.py) and naming from an old voice library compare these embeddings with voiceprints. One
analysis of a recording serves them all: analyse remembers the last."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

import numpy as np

from . import encoder
from .audio import SAMPLE_RATE, blocks, release
from .diarize import vad
from .diarize.vad import MIN_REGION, detect_speech

HOP = encoder.HOP  # 10 ms frames: resemblyzer's mel step, and our time resolution
WIN = 120  # frames per embedding window (1.2 s)
STEP = 25  # frames between window starts (0.25 s)
BATCH = 128


def load_encoder() -> None:
    """Check the voice encoder's weights once, before any long work (they ship inside majlis: no torch,
    no download)."""
    encoder.weights()


@functools.lru_cache(maxsize=1)
def _encoder_threads() -> int:
    # ASR runs beside diarization in the pipeline: the encoder's BLAS takes half the cores.
    return max(1, (os.cpu_count() or 2) // 2)


_lock = threading.Lock()  # batch mode may diarize and name from several threads with one encoder


def frame_db(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // HOP
    power = np.empty(n, np.float32)
    for i, block in blocks(samples[: n * HOP]):
        x = block.reshape(-1, HOP)
        power[i // HOP : i // HOP + len(x)] = np.einsum("ij,ij->i", x, x) / HOP
    return 10.0 * np.log10(power + 1e-12)


@dataclass(frozen=True)
class Analysis:
    samples: np.ndarray  # float32, 1-D
    db: np.ndarray  # per 10 ms frame
    speech: np.ndarray  # bool per frame
    gain: float  # brings the speech to resemblyzer's level, -30 dBFS
    prob: np.ndarray | None = None  # Silero's speech probability per frame (None: energy detection was used)

    def mel(self, frames: np.ndarray):
        """The encoder's input at these frames (computed when asked: hours of it would take gigabytes)."""
        return mel_at(self.samples, frames, self.gain)


_last: list = []  # [array, fingerprint, Analysis]: naming reuses what diarizing the same array computed


def analyse(audio: np.ndarray, *, remember: bool = True) -> Analysis:
    """Speech mask and encoder input of a recording, computed once for diarization and naming alike.
    `remember=False`: this is the recording's last use; what diarizing it kept is handed over and let go."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    # The cache holds the caller's array itself, so its identity cannot be reused by another; the
    # fingerprint catches an array changed in place.
    fingerprint = (samples.shape, hash(samples[:: max(1, len(samples) // 4096)].tobytes()))
    with _lock:
        if _last and _last[0] is audio and _last[1] == fingerprint:
            found = _last[2]
            if not remember:  # else it held the recording (a decoded file's mapping, 0.9 GB at 4 h) until the next
                _last.clear()
            return found
    db = frame_db(samples)
    prob = vad.speech_probability(samples)
    speech = detect_speech(samples, db) if prob is None else vad.speech_mask(prob)
    result = Analysis(samples, db, speech, speech_gain(db, speech), prob)
    if remember:
        with _lock:
            _last[:] = [audio, fingerprint, result]
    return result


def forget(audio: np.ndarray) -> None:
    """Let go of the analysis of this recording, if it is the one remembered: its last user may not have run
    (the word re-check, with one speaker)."""
    with _lock:
        if _last and _last[0] is audio:
            _last.clear()


def mel_at(samples: np.ndarray, frames: np.ndarray, gain: float = 1.0, chunk: int = 8192) -> np.ndarray:
    """resemblyzer's (power, not log) mel spectrum of samples * gain at the given 10 ms frames only
    ((len(frames), 40) float32); all of 0 .. len(samples) // 160 is resemblyzer's whole spectrogram. Each
    frame is 400 samples centred on frame * 10 ms, zeros beyond the ends as librosa pads. `chunk` frames at
    a time, releasing what was read, so hours of audio never need gigabytes at once."""
    half = encoder.N_FFT // 2
    offsets = np.arange(-half, half)
    out = np.empty((len(frames), encoder.N_MELS), np.float32)
    for i in range(0, len(frames), chunk):
        idx = np.asarray(frames[i : i + chunk])[:, None] * HOP + offsets
        outside = (idx < 0) | (idx >= len(samples))
        windows = samples[np.clip(idx, 0, max(0, len(samples) - 1))] if len(samples) else np.zeros(idx.shape)
        windows = np.where(outside, np.float32(0), windows.astype(np.float32) * np.float32(gain))
        release(samples)
        out[i : i + len(idx)] = encoder.mel_frames(windows)
    return out


def speech_gain(db: np.ndarray, mask: np.ndarray) -> float:
    """Gain that brings the speech (not the silence) to resemblyzer's training level, -30 dBFS RMS."""
    power = float(np.mean(10.0 ** (db[mask] / 10.0))) if mask.any() else 0.0
    return 10 ** (-30 / 20) / np.sqrt(power) if power > 1e-12 else 1.0


def window_layout(frames: np.ndarray, *, step: int = STEP, split: int | None = None):
    """(starts, lengths) of windows over positions 0..len(frames)-1. With `split`, no window crosses a
    silence of `split` frames or more, and a stretch of speech shorter than a window gets one window of its
    own length: a short reply ("Yes.") is heard alone instead of inside its neighbours' windows."""
    n = len(frames)
    if n == 0:
        return np.zeros(0, int), np.zeros(0, int)
    cuts = np.flatnonzero(np.diff(frames) >= split) + 1 if split else np.zeros(0, int)
    starts, lengths = [], []
    for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [n]])):
        if b - a < MIN_REGION:
            continue
        if b - a <= WIN:
            starts.append(a), lengths.append(b - a)
            continue
        pos = list(range(a, b - WIN + 1, step))
        if pos[-1] != b - WIN:
            pos.append(b - WIN)
        starts += pos
        lengths += [WIN] * len(pos)
    if not starts:  # only fragments: one window over all of it
        return np.array([0]), np.array([min(n, WIN)])
    return np.array(starts), np.array(lengths)


def embed_windows(found: Analysis, frames: np.ndarray, *, step: int = STEP, max_windows: int | None = None,
                  threads: int | None = None):
    """Embed windows (1.2 s at most) sliding over `frames` (10 ms frames of the recording, normally the
    speech only, so silence never enters the encoder). Returns (embeddings (n, 256), starts, lengths),
    windows given as positions in `frames`. `threads`: as embed_layout's."""
    frames = frames[frames < 1 + len(found.samples) // HOP]
    starts, lengths = window_layout(frames, step=step)
    if max_windows and len(starts) > max_windows:
        pick = np.linspace(0, len(starts) - 1, max_windows).round().astype(int)
        starts, lengths = starts[pick], lengths[pick]
    return embed_layout(found, frames, starts, lengths, threads=threads), starts, lengths


def embed_layout(found: Analysis, frames: np.ndarray, starts: np.ndarray, lengths: np.ndarray, *,
                 threads: int | None = None) -> np.ndarray:
    """Unit embeddings (n, 256) of the windows frames[starts[i] : starts[i] + lengths[i]]. The encoder's
    input is computed a batch of windows at a time, for the frames they cover. `threads`: BLAS threads (half
    the cores when None: an ASR may be running beside)."""
    from threadpoolctl import threadpool_limits

    if len(starts) == 0:
        return np.zeros((0, 256), np.float32)
    starts, lengths = np.asarray(starts), np.asarray(lengths)
    out = []
    with _lock, threadpool_limits(limits=threads or _encoder_threads(), user_api="blas"):
        for i in range(0, len(starts), BATCH):
            s, n = starts[i : i + BATCH], lengths[i : i + BATCH]
            # Overlapping windows share frames: each frame's spectrum is computed once per batch.
            covered = np.unique(np.concatenate([np.arange(a, a + m) for a, m in zip(s, n)]))
            seq = found.mel(frames[covered])
            batch = np.zeros((len(s), int(n.max()), seq.shape[1]), np.float32)
            for j, (a, m) in enumerate(zip(s, n)):
                k = int(np.searchsorted(covered, a))
                batch[j, :m] = seq[k : k + m]
            out.append(encoder.embed(batch, n))  # each window's own length, as resemblyzer's packed forward()
    return np.concatenate(out).astype(np.float32)
