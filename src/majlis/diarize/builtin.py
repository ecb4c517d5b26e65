"""Offline diarization on resemblyzer voice embeddings: no token, no download, weights inside the wheel.

speech detection (Silero VAD; without it energy with a webrtcvad veto) -> embeddings of 1.2 s windows
sliding over the speech only, less the recording's mean -> spectral clustering whose eigengap says how many
voices there are -> Viterbi smoothing in which a speaker change costs less at a pause -> turns whose edges
sit at pauses or energy dips.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

import numpy as np

from .. import encoder
from ..audio import blocks, release
from ..types import ProgressHook, Turn
from . import Diarization, vad
from .vad import MIN_REGION, detect_speech

SR = 16000
HOP = 160  # 10 ms frames: resemblyzer's mel step, and our time resolution
WIN = 120  # frames per embedding window (1.2 s)
STEP = 25  # frames between window starts (0.25 s)
BATCH = 128
PAUSE = 20  # frames: a silence at least this long is a pause where a speaker change is cheap
SPLIT = 30  # frames: no embedding window reaches across a silence this long
MIN_CLUSTER_WIN = 80  # frames: shorter windows are placed on the clusters but do not shape them
BRIDGE = 50  # frames: one speaker's speech across a silence shorter than this is one turn
SWITCH = 4.0  # Viterbi cost of a speaker change inside continuous speech (in cosine-frames)
SWITCH_AT_PAUSE = 0.5
DIP_SEARCH = 25  # frames either side of a change inside speech where we look for the energy minimum
MAX_CLUSTER_UNITS = 1500  # windows that enter the eigendecomposition; the rest are assigned to centroids
MAX_SPEAKERS = 10
MIN_NEIGHBOURS = 10  # a sparser affinity graph falls apart into pieces of one voice (n/8 when shorter)


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


def embed_windows(found: Analysis, frames: np.ndarray, hook=None, total_hint: int = 0, *,
                  step: int = STEP, split: int | None = None, max_windows: int | None = None):
    """Embed windows (1.2 s at most) sliding over `frames` (10 ms frames of the recording, normally the
    speech only, so silence never enters the encoder). Returns (embeddings (n, 256), starts, lengths),
    windows given as positions in `frames`."""
    frames = frames[frames < 1 + len(found.samples) // HOP]
    starts, lengths = window_layout(frames, step=step, split=split)
    if max_windows and len(starts) > max_windows:
        pick = np.linspace(0, len(starts) - 1, max_windows).round().astype(int)
        starts, lengths = starts[pick], lengths[pick]
    return embed_layout(found, frames, starts, lengths, hook, total_hint), starts, lengths


def embed_layout(found: Analysis, frames: np.ndarray, starts: np.ndarray, lengths: np.ndarray, hook=None,
                 total_hint: int = 0) -> np.ndarray:
    """Unit embeddings (n, 256) of the windows frames[starts[i] : starts[i] + lengths[i]]. The encoder's
    input is computed a batch of windows at a time, for the frames they cover."""
    from threadpoolctl import threadpool_limits

    if len(starts) == 0:
        return np.zeros((0, 256), np.float32)
    starts, lengths = np.asarray(starts), np.asarray(lengths)
    out = []
    with _lock, threadpool_limits(limits=_encoder_threads(), user_api="blas"):
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
            if hook:
                hook("diarize", min(i + BATCH, len(starts)), len(starts) + total_hint)
    return np.concatenate(out).astype(np.float32)


def center(E: np.ndarray) -> np.ndarray:
    """Unit embeddings less their recording's mean, made unit again. Every window of one recording shares
    the channel and much of what resemblyzer hears in any voice (raw cosines of different people sit at
    0.6-0.9); what is left tells the voices apart."""
    if len(E) < 2:
        return E
    Z = E - E.mean(axis=0)
    return (Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def _spectral(E: np.ndarray, starts: np.ndarray, ends: np.ndarray, kmin: int, kmax: int, fixed: int | None):
    """Cluster unit-norm embeddings; returns (k, labels). The affinity keeps each row's nearest neighbours
    only (pruning fraction chosen per recording by the normalised maximum eigengap, Park et al. 2019),
    and the number of speakers is where the Laplacian's eigenvalues jump."""
    from scipy.linalg import eigh

    n = len(E)
    S = np.clip(E @ E.T, 0.0, 1.0)
    # Windows that share frames are similar because they hear the same sound, not only the same voice;
    # left in, they chain each stretch of speech into a cluster of its own.
    S[(starts[:, None] < ends[None, :]) & (starts[None, :] < ends[:, None])] = 0.0
    best, floor = None, max(3, min(MIN_NEIGHBOURS, n // 8))
    for frac in (0.02, 0.04, 0.06, 0.1, 0.15, 0.2):
        nn = int(min(n - 1, max(floor, round(frac * n))))
        thr = np.partition(S, n - nn - 1, axis=1)[:, n - nn - 1][:, None]
        A = np.where(S >= thr, S, 0.0)
        A = 0.5 * (A + A.T)
        np.fill_diagonal(A, 0.0)
        d = np.maximum(A.sum(axis=1), 1e-9)
        lap = np.eye(n) - A / np.sqrt(np.outer(d, d))
        top = min(n - 1, max(kmax, MAX_SPEAKERS) + 1)
        w, v = eigh(lap, subset_by_index=[0, top])
        gaps = np.diff(w)
        # The largest jump says how many; bounds given by the caller clip it rather than hide it.
        k = fixed or int(np.clip(1 + np.argmax(gaps[: max(kmax, MAX_SPEAKERS)]), kmin, kmax))
        ratio = nn / n / max(gaps[k - 1] / max(w[-1], 1e-9), 1e-9)
        if best is None or ratio < best[0]:
            best = (ratio, k, v[:, :k])
    _, k, V = best
    if k == 1:
        return 1, np.zeros(n, int)
    V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-9)
    return k, _kmeans(V, k)


def _kmeans(X: np.ndarray, k: int, restarts: int = 8) -> np.ndarray:
    from scipy.cluster.vq import kmeans2

    rng = np.random.default_rng(0)  # the same file always gets the same answer
    best = None
    for _ in range(restarts):
        centers, labels = kmeans2(X, k, minit="++", seed=rng, iter=30)
        inertia = float(((X - centers[labels]) ** 2).sum())
        if len(set(labels.tolist())) == k and (best is None or inertia < best[0]):
            best = (inertia, labels)
    return best[1] if best else np.zeros(len(X), int)


def cluster(E: np.ndarray, starts: np.ndarray, ends: np.ndarray, num: int | None, lo: int | None,
            hi: int | None) -> np.ndarray:
    """Centroids (k, 256) of the speakers among the window embeddings."""
    n = len(E)
    if n == 0:
        return np.zeros((0, E.shape[1]), np.float32)
    fixed = min(num, n) if num else None
    kmax = fixed or max(1, min(hi or MAX_SPEAKERS, n - 1 if n > 2 else 1))
    kmin = max(1, min(lo or 1, kmax))
    if n <= 3 or fixed == 1 or kmax == 1:
        k, labels = 1, np.zeros(n, int)
    else:
        units = np.linspace(0, n - 1, min(n, MAX_CLUSTER_UNITS)).round().astype(int)
        k, labels = _spectral(E[units], starts[units], ends[units], kmin, kmax, fixed)
        labels = _assign(E, _centroids(E[units], labels, k))
    # A few cosine k-means steps in the embedding space itself clean up the spectral partition; a cluster
    # of a handful of windows (a cough, two voices at once) is not a speaker unless the caller says so.
    for _ in range(5):
        C = _centroids(E, labels, k)
        sizes = np.bincount(labels, minlength=k)
        small = sizes < max(3, 0.01 * n)
        if not fixed and small.any() and k - small.sum() >= kmin:
            C, k = C[~small], int(k - small.sum())
        new = _assign(E, C)
        if (new == labels).all():
            break
        labels = new
    return _centroids(E, labels, k)


def _centroids(E, labels, k):
    C = np.stack([E[labels == j].mean(axis=0) if (labels == j).any() else E.mean(axis=0) for j in range(k)])
    return C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-9)


def _assign(E, C):
    return np.argmax(E @ C.T, axis=1)


def viterbi(scores: np.ndarray, cheap: np.ndarray) -> np.ndarray:
    """Best label path through per-frame similarities (n, k); a change costs SWITCH, or SWITCH_AT_PAUSE
    before frames where `cheap` is set (the first frame after a pause)."""
    n, k = scores.shape
    if k == 1:
        return np.zeros(n, int)
    back = np.zeros((n, k), np.int8 if k <= 127 else np.int32)  # one row per 10 ms: hours make it large
    acc = scores[0].astype(np.float64).copy()
    for t in range(1, n):
        cost = SWITCH_AT_PAUSE if cheap[t] else SWITCH
        j = int(np.argmax(acc))
        stay = acc
        move = acc[j] - cost
        take_move = move > stay
        back[t] = np.where(take_move, j, np.arange(k))
        acc = np.where(take_move, move, stay) + scores[t]
    path = np.zeros(n, int)
    path[-1] = int(np.argmax(acc))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def build_turns(frames: np.ndarray, path: np.ndarray, db: np.ndarray) -> list[tuple[int, int, int]]:
    """(label, start frame, end frame) turns from runs of one label over the speech frames: one speaker's
    silences shorter than BRIDGE stay inside the turn, a change inside continuous speech moves to the
    quietest nearby frame."""
    if len(frames) == 0:
        return []
    # A new span wherever the label changes or the same speaker's silence reaches BRIDGE. Whole arrays, not
    # a loop: hours of audio are millions of frames.
    new = np.ones(len(frames), bool)
    new[1:] = (path[1:] != path[:-1]) | (np.diff(frames) > BRIDGE)
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(frames)) - 1
    spans = [[lab, a, b + 1] for lab, a, b in zip(path[first].tolist(), frames[first].tolist(), frames[last].tolist())]
    for prev, cur in zip(spans, spans[1:]):
        lo, hi = max(prev[1] + 1, cur[1] - DIP_SEARCH), min(cur[2] - 1, cur[1] + DIP_SEARCH)
        if cur[1] == prev[2] and hi > lo:  # a change with no silence between: cut at the dip
            prev[2] = cur[1] = lo + int(np.argmin(db[lo:hi]))
    return [tuple(sp) for sp in spans]


class BuiltinDiarizer:
    name = "builtin:resemblyzer"

    def __init__(self) -> None:
        load_encoder()  # fail now, and only once, if the encoder cannot load
        vad.available()  # and load Silero with the other engines, not in the middle of the first file

    def diarize(self, audio: np.ndarray, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None, hook: ProgressHook | None = None) -> Diarization:
        found = analyse(audio)
        db, frames = found.db, np.flatnonzero(found.speech)
        if len(frames) == 0:
            if hook:
                hook("diarize", 1, 1)
            return Diarization((), ())
        E, starts, lengths = embed_windows(found, frames, hook, total_hint=1, split=SPLIT)
        ends = starts + lengths
        E = center(E)
        # Short windows place short replies; only windows long enough to carry a voice shape the clusters.
        sure = lengths >= MIN_CLUSTER_WIN
        if sure.sum() < MIN_NEIGHBOURS:
            sure[:] = True
        C = cluster(E[sure], starts[sure], ends[sure], num_speakers, min_speakers, max_speakers)
        # Each speech frame scores every speaker by the mean similarity of the windows covering it.
        sims = E @ C.T
        acc = np.zeros((len(frames) + 1, len(C) + 1))  # running sums of similarity, last column counts
        np.add.at(acc, starts, np.c_[sims, np.ones(len(sims))])
        np.add.at(acc, ends, -np.c_[sims, np.ones(len(sims))])
        run = np.cumsum(acc, axis=0, out=acc)[:-1]  # in place: one row per 10 ms of speech
        scores = run[:, :-1] / np.maximum(run[:, -1:], 1)
        del acc, run
        cheap = np.concatenate([[False], np.diff(frames) >= PAUSE])
        path = viterbi(scores, cheap)
        spans = build_turns(frames, path, db)
        # SPEAKER_00 is whoever speaks first; speakers the smoothing left without a turn disappear.
        order: dict[int, int] = {}
        for lab, _, _ in spans:
            order.setdefault(lab, len(order))
        turns = tuple(Turn(f"SPEAKER_{order[lab]:02d}", round(a * HOP / SR, 3), round(b * HOP / SR, 3))
                      for lab, a, b in spans)
        if hook:
            hook("diarize", len(starts) + 1, len(starts) + 1)
        return Diarization(turns, turns)
