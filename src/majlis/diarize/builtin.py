"""Offline diarization on CAM++ voice embeddings (campplus.py): no token, no download, weights inside the wheel.

speech detection (Silero VAD; without it energy with a webrtcvad veto) -> CAM++ embeddings of 1.2 s windows
sliding over the speech only (on a long recording every other window, then those near a change), less the
recording's mean -> spectral clustering whose eigengap says how many
voices there are -> Viterbi smoothing in which a speaker change costs less at a pause -> two speakers whose
CAM++ prints of a minute of speech say they are one person made one -> turns whose edges sit at pauses or
energy dips -> where two voices speak at once, the second one's turns (overlaps.py).

The windows were resemblyzer's until CAM++ came: on real voices over a phone line resemblyzer merged two
readers or split one, and left stretches of a turn with the wrong reader (BENCHMARKS.md, "Who said it").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import ProgressHook, Turn
from ..audio import SAMPLE_RATE
from ..voice import HOP, analyse, load_encoder, window_layout
from .. import campplus
from . import Diarization, DiarizerBase, overlaps, vad

PAUSE = 20  # frames: a silence at least this long is a pause where a speaker change is cheap
SPLIT = 30  # frames: no embedding window reaches across a silence this long
MIN_CLUSTER_WIN = 80  # frames: shorter windows are placed on the clusters but do not shape them
BRIDGE = 50  # frames: one speaker's speech across a silence shorter than this is one turn
# Viterbi cost of a speaker change inside continuous speech, in cosine-frames. CAM++'s centred cosines part
# speakers by about half what resemblyzer's did, so its costs (4.0 and 0.5) were halved: sample.wav's
# one-second turns ("Hello?") survive, and the real-voice panels measured no worse (bench/speakers.py).
SWITCH = 2.0
SWITCH_AT_PAUSE = 0.25
WINDOW_STEP = 50  # frames between window starts (0.5 s): a CAM++ window costs ~14 ms of one core
REFINE_MARGIN = 0.1  # centred cosine: neighbours that prefer one speaker by less leave the window between unsure
DIP_SEARCH = 25  # frames either side of a change inside speech where we look for the energy minimum
MAX_CLUSTER_UNITS = 1500  # windows that enter the eigendecomposition; the rest are assigned to centroids
MAX_SPEAKERS = 10
MIN_NEIGHBOURS = 10  # a sparser affinity graph falls apart into pieces of one voice (n/8 when shorter)


def center(raw: np.ndarray, mean: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The unit embeddings of `rows` less `mean`, made unit again (other rows zero). Every window of one
    recording shares the channel and much of what the encoder hears in any voice; what is left tells the voices
    apart. The mean is that of the evenly spread windows, not of those added near changes."""
    Z = np.zeros_like(raw)
    Z[rows] = raw[rows] - mean
    Z[rows] /= np.maximum(np.linalg.norm(Z[rows], axis=1, keepdims=True), 1e-9)
    return Z


def _every_other(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The windows to embed first: all but every other one whose two neighbours together cover its frames."""
    keep = np.ones(len(starts), bool)
    for i in range(1, len(starts) - 1):
        if keep[i - 1] and starts[i - 1] < starts[i] < starts[i + 1] <= ends[i - 1]:
            keep[i] = False
    return keep


def _unsure_between(sims: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The windows left out of `first` whose neighbours (both in `first`) disagree on the speaker, or agree
    by less than REFINE_MARGIN: the windows near a change of speaker."""
    top = np.sort(sims, axis=1)
    margin = top[:, -1] - top[:, -2] if sims.shape[1] > 1 else np.full(len(sims), np.inf)
    label = np.argmax(sims, axis=1)
    gaps = np.flatnonzero(~first)
    out = np.zeros(len(first), bool)
    if len(gaps):
        a, b = gaps - 1, gaps + 1
        out[gaps] = (label[a] != label[b]) | (np.minimum(margin[a], margin[b]) < REFINE_MARGIN)
    return out


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
    """Centroids (k, dim) of the speakers among the window embeddings."""
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


def merge_halves(audio: np.ndarray, speech: np.ndarray, frames: np.ndarray, path: np.ndarray, scores: np.ndarray,
                 cheap: np.ndarray, db: np.ndarray, lo: int | None) -> np.ndarray:
    """The path again with any speaker the clustering split in two made one: a print of a minute of each
    speaker's speech (campplus.SAME_PERSON) tells halves of one voice from two voices better than 1.2 s
    windows do; each frame then scores the merged speaker by the better of its halves, and the smoothing runs
    again. Never below `lo` speakers."""
    labels = np.unique(path).tolist()
    if len(labels) < 2:
        return path
    groups: dict[int, list] = {lab: [] for lab in labels}
    for lab, a, b in build_turns(frames, path, db):
        groups[lab].append((a * HOP / SAMPLE_RATE, b * HOP / SAMPLE_RATE))
    prints = {lab: v for lab, v in campplus.prints(audio, speech, groups).items() if v is not None}
    root = {lab: lab for lab in labels}
    pairs = sorted(((float(prints[a] @ prints[b]), a, b) for a in prints for b in prints if a < b), reverse=True)
    for cosine, a, b in pairs:
        if cosine < campplus.SAME_PERSON or len(set(root.values())) <= max(1, lo or 1):
            break
        ra, rb = root[a], root[b]
        root = {lab: ra if r == rb else r for lab, r in root.items()}
    if len(set(root.values())) == len(labels):
        return path
    merged = sorted(set(root.values()))
    best = np.stack([scores[:, [lab for lab in labels if root[lab] == g]].max(axis=1) for g in merged], axis=1)
    return np.asarray(merged)[viterbi(best, cheap)]


class BuiltinDiarizer(DiarizerBase):
    name = "builtin:campplus+segmentation-3.0"

    def __init__(self, **choice: Any) -> None:  # pipeline, hf_token, device: nothing to choose
        campplus.load()  # fail now, and only once, if a model cannot load; and load Silero, the overlap
        vad.available()  # model and resemblyzer (the word re-check's encoder, attribution.py) with the other
        overlaps.load()  # engines, not in the first file
        load_encoder()

    def diarize(self, audio: np.ndarray, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None, hook: ProgressHook | None = None) -> Diarization:
        found = analyse(audio)
        db, frames = found.db, np.flatnonzero(found.speech)
        frames = frames[frames < len(found.samples) // HOP]  # whole frames only: each window's samples
        if len(frames) == 0:
            if hook:
                hook("diarize", 1, 1)
            return Diarization((), ())
        later = overlaps.batches(len(audio)) + 1  # progress marks after the windows
        starts, lengths = window_layout(frames, step=WINDOW_STEP, split=SPLIT)
        ends = starts + lengths
        pieces = [found.samples[frames[a] * HOP : (frames[b - 1] + 1) * HOP] for a, b in zip(starts, ends)]
        windows = len(starts)

        def progress(done: int) -> None:
            if hook:
                hook("diarize", done, windows + later)

        # A long recording's clustering takes MAX_CLUSTER_UNITS windows spread over it, so every other window
        # serves it as well: those are embedded first. Where the two neighbours of a window left out agree on
        # a speaker by a clear margin, it would say the same, and is never embedded (a third fewer windows on
        # 39 minutes of long turns). Shorter recordings embed every window: on 60 s panels, clustering every
        # other window lost a reader (bench/speakers.py).
        first = _every_other(starts, ends) if len(starts) > 2 * MAX_CLUSTER_UNITS else np.ones(len(starts), bool)
        raw = np.zeros((len(starts), campplus.DIM), np.float32)
        raw[first] = campplus.embed([pieces[i] for i in np.flatnonzero(first)], hook=lambda d, t: progress(d))
        mean = raw[first].mean(axis=0)
        E = center(raw, mean, first)
        # Short windows place short replies; only windows long enough to carry a voice shape the clusters.
        sure = first & (lengths >= MIN_CLUSTER_WIN)
        if sure.sum() < MIN_NEIGHBOURS:
            sure = first.copy()
        C = cluster(E[sure], starts[sure], ends[sure], num_speakers, min_speakers, max_speakers)
        more = _unsure_between(E @ C.T, first)
        if more.any():
            raw[more] = campplus.embed([pieces[i] for i in np.flatnonzero(more)],
                                       hook=lambda d, t: progress(int(first.sum()) + d))
        heard = first | more
        E = center(raw, mean, heard)[heard]
        starts, ends, lengths = starts[heard], ends[heard], lengths[heard]
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
        if not num_speakers:
            path = merge_halves(audio, found.speech, frames, path, scores, cheap, db, min_speakers)
        spans = build_turns(frames, path, db)
        # SPEAKER_00 is whoever speaks first; speakers the smoothing left without a turn disappear.
        order: dict[int, int] = {}
        for lab, _, _ in spans:
            order.setdefault(lab, len(order))
        turns = tuple(Turn(f"SPEAKER_{order[lab]:02d}", round(a * HOP / SAMPLE_RATE, 3), round(b * HOP / SAMPLE_RATE, 3))
                      for lab, a, b in spans)
        turns, second, alone = overlaps.second_voices(audio, turns, hook, windows, windows + later)
        if hook:
            hook("diarize", windows + later, windows + later)
        return Diarization(overlaps.with_overlaps(turns, second), turns, alone)
