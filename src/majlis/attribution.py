"""Each word's speaker checked by its own voice, and a confidence on it.

A diarizer's turns come from windows a second or more long, so a turn edge can sit a word or two off and a
one-word reply can vanish into its neighbour's turn. Here every word is heard again: words near a speaker
change or in a short turn through a 1 s window centred on the word itself, the others through 1 s windows
on a grid (one window serves every word whose middle falls in it). Each window is compared with every
speaker's voice (their own speech in the episode), both with the episode's mean voice taken out.

- A word near a change or in a short turn moves to the speaker its window prefers when the margin over
  the turn's speaker is at least SWITCH_MARGIN (measured on real speech: smaller margins are noise). Where
  the diarizer's segmentation model clearly heard one speaker alone over most of the word (`alone`), that
  speaker takes it instead, unless the window prefers another by CONFIDENT_MARGIN: the model hears 17 ms
  frames, a 1 s window near a change hears both speakers, but on same-sex panels the model confuses readers.
- A move that would leave a word or two (under ISLAND) of another speaker inside one speaker's speech, with
  no pause either side, is undone: people do not trade single words mid-sentence.
- A change of speaker a word away from a sentence end (whisper's punctuation) moves to it, when no turn
  vanishes: people hand over at the end of a sentence, and whisper times the words there least surely.
- `speaker_confidence` (0-1) comes from the margin of the word's speaker over the best other one:
  0.5 at a tie, 1 at CONFIDENT_MARGIN or more, 0 when another speaker is CONFIDENT_MARGIN better.

Works on any diarizer's turns (builtin or pyannote) and needs only the samples, so batch mode runs it too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from .types import Turn, Word

WINDOW = 1.0  # seconds of audio a word is heard through
NEAR_CHANGE = 1.5  # seconds: a word this close to a change of speaker is re-checked by its own window
SHORT_TURN = 1.5  # seconds: every word of a turn shorter than this is re-checked
SWITCH_MARGIN = 0.1  # centred cosine: how much better another speaker must match to take the word
CONFIDENT_MARGIN = 0.2
PROFILE_STEP = 120  # frames between the windows of a speaker's voice print
PROFILE_WINDOWS = 100  # windows per speaker: two minutes of speech make a steady voice print
MIN_WINDOW = 10  # frames of speech a window needs
ISLAND = 1.0  # seconds: a move this short, with no pause either side, inside one speaker's speech is undone
ISLAND_GAP = 0.15  # seconds: a shorter silence between words is no pause
SENTENCE_SNAP = 1  # words: a change of speaker this close to a sentence end moves to it (2 moved the same)


def _changes(items: Sequence) -> list[float]:
    """Times (s) where the speaker changes between consecutive items (words, or turns in order of start)."""
    return [(a.end + b.start) / 2 for a, b in zip(items, items[1:]) if a.speaker != b.speaker]


def _distance(changes: np.ndarray, mids: np.ndarray) -> np.ndarray:
    """Each time's distance (s) to the nearest of the sorted `changes` (inf when there are none)."""
    if len(changes) == 0:
        return np.full(len(mids), np.inf)
    pos = np.searchsorted(changes, mids)
    return np.minimum(np.abs(mids - changes[np.clip(pos - 1, 0, len(changes) - 1)]),
                      np.abs(changes[np.clip(pos, 0, len(changes) - 1)] - mids))


def _turn_info(words: Sequence[Word], exclusive: Sequence[Turn]) -> tuple[np.ndarray, np.ndarray]:
    """Per word: the distance (s) to the nearest change of speaker, and the length of its own run of words of
    one speaker (in seconds, first word's start to last word's end)."""
    n = len(words)
    changes = np.array(sorted(_changes(words) + _changes(sorted(exclusive, key=lambda t: t.start))))
    near = _distance(changes, np.array([(w.start + w.end) / 2 for w in words]))
    run_len = np.zeros(n)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and words[j + 1].speaker == words[i].speaker:
            j += 1
        run_len[i : j + 1] = words[j].end - words[i].start
        i = j + 1
    return near, run_len


@dataclass(frozen=True)
class Heard:
    """What the re-check needs from the recording and its turns alone, before any word exists: each speaker's
    voice print and the 1 s grid windows. The pipeline makes it beside the ASR (hear), so only the windows
    centred on words near a change are left for after."""

    found: Any  # voice.Analysis
    speech: np.ndarray  # speech frames
    names: tuple[str, ...]  # speaker labels, in the order of `prints`' rows
    prints: np.ndarray  # (speakers, 256) unit voice prints, the episode's mean voice taken out
    mean: np.ndarray  # the episode's mean voice
    grid: dict  # window centre (frame) -> its unit embedding, the mean voice taken out
    changes: np.ndarray  # times (s) of the changes of speaker between the turns, sorted
    short: np.ndarray  # (n, 2) start and end (s) of the turns shorter than SHORT_TURN, by start


def hear(samples: np.ndarray, exclusive: Sequence[Turn], *, threads: int | None = None) -> Heard | None:
    """The voice prints and grid windows of a recording (None: fewer than two voices to tell apart). This is
    the recording's last use by the encoder: what diarizing it kept is let go. `threads`: the encoder's BLAS
    threads (voice.embed_layout)."""
    labels = sorted({t.speaker for t in exclusive})
    if len(labels) < 2:
        return None
    from .voice import analyse, embed_windows

    found = analyse(samples, remember=False)
    speech = np.flatnonzero(found.speech)
    if len(speech) < MIN_WINDOW:
        return None
    prints, all_windows = {}, []
    for lab in labels:
        inside = np.zeros(len(found.speech), bool)
        for t in exclusive:
            if t.speaker == lab:
                inside[max(0, round(t.start * 100)) : max(0, round(t.end * 100))] = True
        frames = np.flatnonzero(found.speech & inside)
        if len(frames) < 50:
            continue
        E, _, n = embed_windows(found, frames, step=PROFILE_STEP, max_windows=PROFILE_WINDOWS, threads=threads)
        if len(E):
            prints[lab] = (E, n)
            all_windows.append(E)
    if len(prints) < 2:
        return None
    mean = np.concatenate(all_windows).mean(axis=0)
    P = np.stack([((E - mean) * n[:, None]).sum(axis=0) for E, n in prints.values()])
    P /= np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-9)
    ordered = sorted(exclusive, key=lambda t: t.start)
    changes = np.array(sorted(_changes(ordered)))
    short = np.array([(t.start, t.end) for t in ordered if t.end - t.start < SHORT_TURN]).reshape(-1, 2)
    heard = Heard(found, speech, tuple(prints), P, mean, {}, changes, short)
    # Every grid cell with speech in it: the words that will fall there are not known yet.
    cells = np.unique(speech // _cell_frames())
    _embed_centres(heard, np.round((cells + 0.5) * _cell_frames()).astype(int), need_speech=True, threads=threads)
    return heard


def prehear(heard: Heard, words: Sequence[Word]) -> None:
    """Embed now the windows of the words the re-check will hear by their own voice, as far as the turns
    alone tell (near a change of speaker, or in a short turn): the pipeline does it beside the ASR as the
    words come, so that little is left once the ASR is done."""
    if not words:
        return
    mids = np.array([(w.start + w.end) / 2 for w in words])
    near = _distance(heard.changes, mids)
    inside = np.zeros(len(mids), bool)
    if len(heard.short):
        k = np.clip(np.searchsorted(heard.short[:, 0], mids, side="right") - 1, 0, len(heard.short) - 1)
        inside = (heard.short[k, 0] <= mids) & (mids < heard.short[k, 1])
    own = (near < NEAR_CHANGE) | inside
    if own.any():
        _embed_centres(heard, np.round([_centre_frame(w) for w, o in zip(words, own) if o]).astype(int))


def _centre_frame(word: Word) -> float:
    return (word.start + word.end) / 2 * _cell_frames() / WINDOW


def _cell_frames() -> float:
    from .audio import SAMPLE_RATE
    from .voice import HOP

    return WINDOW * SAMPLE_RATE / HOP


def _embed_centres(heard: Heard, centres: np.ndarray, *, need_speech: bool = False, threads: int | None = None
                   ) -> None:
    """Embed the WINDOW-long windows centred on these frames into heard.grid (those not there yet). A window
    with too little speech inside takes the nearest speech frames instead, or is left out with `need_speech`."""
    from .voice import embed_layout

    speech, half = heard.speech, _cell_frames() / 2
    keys, starts, lengths = [], [], []
    for c in np.unique(centres).tolist():
        if c in heard.grid:
            continue
        lo, hi = np.searchsorted(speech, c - half), np.searchsorted(speech, c + half)
        if hi - lo < MIN_WINDOW:
            if need_speech:
                continue
            k = int(np.clip(np.searchsorted(speech, c), 0, len(speech)))
            lo, hi = max(0, k - MIN_WINDOW // 2), min(len(speech), max(0, k - MIN_WINDOW // 2) + MIN_WINDOW)
        keys.append(c)
        starts.append(lo)
        lengths.append(hi - lo)
    if not keys:
        return
    Z = embed_layout(heard.found, speech, np.array(starts), np.array(lengths), threads=threads) - heard.mean
    Z /= np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-9)
    heard.grid.update(zip(keys, Z))


def recheck(samples: np.ndarray, words: Sequence[Word], exclusive: Sequence[Turn], heard: Heard | None = None,
            *, threads: int | None = None, alone: Sequence[Turn] = ()) -> list[Word]:
    """The words with speakers re-checked where the turns are least sure and `speaker_confidence` set.
    `heard`: hear(samples, exclusive), made earlier (beside the ASR); made here when not given. `threads`:
    the encoder's BLAS threads (voice.embed_layout). `alone`: where the diarizer clearly heard one speaker
    alone (Diarization.alone)."""
    words = list(words)
    if not words or len({w.speaker for w in words if w.speaker is not None} | {t.speaker for t in exclusive}) < 2:
        return words  # nobody to confuse the speaker with (or no diarizer ran): nothing to say
    heard = heard if heard is not None else hear(samples, exclusive, threads=threads)
    if heard is None:
        return words
    names = list(heard.names)

    near, run_len = _turn_info(words, exclusive)
    own = (near < NEAR_CHANGE) | (run_len < SHORT_TURN)
    cell = _cell_frames()
    # A word's window: its own centre, or the centre of its 1 s grid cell.
    centres = np.round(np.array([_centre_frame(w) if o else (np.floor((w.start + w.end) / 2 / WINDOW) + 0.5) * cell
                                 for w, o in zip(words, own)])).astype(int)
    _embed_centres(heard, centres, threads=threads)
    S = np.stack([heard.grid[c] for c in centres.tolist()]) @ heard.prints.T  # (words, speakers)

    said = [w.speaker for w in words]
    clear = _heard_alone(words, alone)
    for i, w in enumerate(words):
        if own[i] and w.speaker in names:
            cur, best = names.index(w.speaker), int(np.argmax(S[i]))
            if clear[i] in names and S[i, best] - S[i, names.index(clear[i])] < CONFIDENT_MARGIN:
                said[i] = clear[i]
            elif best != cur and S[i, best] - S[i, cur] >= SWITCH_MARGIN:
                said[i] = names[best]
    _keep_islands_out(words, said)
    _changes_at_sentence_ends(words, said)
    out = []
    for i, w in enumerate(words):
        if w.speaker is None or w.speaker not in names:
            out.append(w)
            continue
        cur = names.index(said[i])
        margin = float(S[i, cur] - np.delete(S[i], cur).max())
        confidence = float(np.clip(0.5 + margin / (2 * CONFIDENT_MARGIN), 0.0, 1.0))
        out.append(replace(w, speaker=said[i], speaker_confidence=round(confidence, 3)))
    return out


def _heard_alone(words: Sequence[Word], alone: Sequence[Turn]) -> list[str | None]:
    """Per word: the speaker of the `alone` spans (disjoint) that cover at least half of it, else None."""
    spans = sorted(alone, key=lambda t: t.start)
    ends = np.array([t.end for t in spans])
    out: list[str | None] = []
    for w in words:
        held: dict[str, float] = {}
        j = int(np.searchsorted(ends, w.start, side="right"))
        while j < len(spans) and spans[j].start < w.end:
            t, j = spans[j], j + 1
            held[t.speaker] = held.get(t.speaker, 0.0) + min(t.end, w.end) - max(t.start, w.start)
        best = max(held, key=held.get, default=None)
        out.append(best if best is not None and 2 * held[best] >= w.end - w.start else None)
    return out


def _keep_islands_out(words: Sequence[Word], said: list) -> None:
    """Undo (in `said`) a move that would leave a word or two of another speaker inside one speaker's
    continuous speech: people do not trade single words without a pause, so such an island is the encoder
    hearing a 1 s window wrong (on sample.wav it gave "Chicago" to the other speaker mid-sentence)."""
    i, n = 0, len(words)
    while i < n:
        if said[i] == words[i].speaker:
            i += 1
            continue
        j = i
        while j + 1 < n and said[j + 1] != words[j + 1].speaker and said[j + 1] == said[i]:
            j += 1
        before, after, was = i - 1, j + 1, words[i].speaker
        if (before >= 0 and after < n and said[before] == was and said[after] == was
                and words[j].end - words[i].start < ISLAND
                and words[i].start - words[before].end < ISLAND_GAP and words[after].start - words[j].end < ISLAND_GAP):
            said[i : j + 1] = [w.speaker for w in words[i : j + 1]]
        i = j + 1


def _changes_at_sentence_ends(words: Sequence[Word], said: list) -> None:
    """Move (in `said`) a change of speaker inside a sentence to the nearest sentence end at most
    SENTENCE_SNAP words away with no other change between: whisper times the words around a change least
    surely (in the demo it gave Tahir's first "we" the end of Mudaqiq's sentence), and people hand over at
    the end of a sentence, not a word before or after it."""
    from .align import is_sentence_end

    n = len(words)
    ends = [is_sentence_end(w.word) for w in words]  # ends[b - 1]: a sentence ends between words b - 1 and b

    def movable(b: int, c: int) -> bool:
        """The change at c may move to the sentence end at b: the words between are one speaker's, and that
        speaker keeps a word beyond them (no turn vanishes)."""
        keeper = b - 1 if b < c else b
        return 0 < b < n and ends[b - 1] and len(set(said[min(b, c) : max(b, c)]) | {said[keeper]}) == 1

    for c in range(1, n):
        if said[c - 1] == said[c] or ends[c - 1]:
            continue
        near = [b for d in range(1, SENTENCE_SNAP + 1) for b in (c - d, c + d) if movable(b, c)]
        if len(near) == 1 or (near and abs(near[0] - c) < abs(near[1] - c)):  # two as near: neither
            b = near[0]
            said[min(b, c) : max(b, c)] = [said[c] if b < c else said[c - 1]] * abs(b - c)
