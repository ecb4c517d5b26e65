"""Which diarized voice takes which enrolled name: an optimal one-to-one assignment of voices to names, and
when a pair is close enough to take. Two encoders, two decisions: CAM++ voice prints (campplus.py), whose
cosines tell people apart on their own, and resemblyzer embeddings (the voice library's prints, and a plain
`--match-threshold` bar), whose cosines need the episode's own voices to calibrate them (`decide`)."""

from __future__ import annotations

import logging

import numpy as np

from .campplus import SAME_PERSON

log = logging.getLogger("majlis")

# Cosine similarity (resemblyzer voice embeddings) at or above which a diarized speaker takes an enrolled
# name. Measured: flite voices against their own enrollment (other sentences) 0.97-0.99 (demo panel, 12
# sox-shifted flite voices, an unseen flite conversation); different flite voices <= 0.80 on the demo,
# <= 0.86 across the shifted set and 0.88 for one voice against itself three semitones higher. Real speech
# (pyannote's sample.wav, one session): a speaker's two halves 0.95, the two speakers 0.82-0.86. 0.90 sits
# between; enrollment recorded on another microphone scores lower, so callers may pass a lower threshold.
MATCH_THRESHOLD = 0.90
# The calibrated decision (see `decide`), from real voices (bench/panels.py, LibriSpeech readers): centred
# cosines of a voice and its own sample 0.63-0.94 on the same channel and 0.31-0.49 when the episode is a
# 32 kbps phone line, of different people <= 0.09 (<= 0.03 across channels); raw cosines across channels
# 0.66-0.78 for the same person.
CENTRED_MIN = 0.2
CENTRED_MARGIN = 0.15
RAW_FLOOR = 0.6
# Raw cosine by which a voice must beat the episode's other voices for a name. A voice nobody enrolled
# paired with an absent one came within 0.00-0.04 of the runner-up; true pairs 0.08-0.17, one 0.037.
COLUMN_GAP = 0.05
# Raw cosine between two diarized voices at or above which they may be halves of one (split_voices, decide):
# a reader split in two on a phone line 0.90-0.92 between the halves; different readers of one panel <= 0.84
# clean, but up to 0.90 on the phone line, where the name's own scores must then tell them apart.
SPLIT_MIN = 0.87
CLOSE_NAMES = 0.03  # two enrolled names this close for one voice: warn
CLOSE_THRESHOLD = 0.02  # a match this close to the threshold: warn


def _centred(X: np.ndarray) -> np.ndarray | None:
    if len(X) < 2:
        return None
    Z = X - X.mean(axis=0)
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-9)


def decide(heard: np.ndarray, enrolled: np.ndarray, cols: list[int], threshold: float | None, *,
           rows: list[str] | None = None, names: list[str] | None = None) -> list[tuple[int, int]]:
    """(row of `heard`, row of `enrolled`) pairs: which diarized voice takes which enrolled name. Voices and
    names are paired one-to-one (optimal assignment); `cols` are the names still free.

    With a `threshold`, a pair needs that raw cosine. Without, the decision calibrates itself to the two
    recordings: raw cosines across channels (a studio sample, a 32 kbps phone episode) sink for everyone,
    true pairs included, so each side is centred on its own voices' mean first (what the episode's voices
    share is the channel, not the person). A pair is then taken when its raw cosine reaches
    MATCH_THRESHOLD, or when its centred cosine is at least CENTRED_MIN and beats every other candidate in
    its row and column by CENTRED_MARGIN, its raw cosine is at least RAW_FLOOR and the best of its row, and
    no other voice of the episode comes within COLUMN_GAP of it for that name. A voice the diarizer split
    in two (the halves' raw cosine SPLIT_MIN or more) does not compete with itself in the column."""
    from scipy.optimize import linear_sum_assignment

    raw = heard @ enrolled[cols].T
    a, b = _centred(heard), _centred(enrolled)
    centred = None if threshold is not None or a is None or b is None else a @ b[cols].T
    pick = linear_sum_assignment(-(raw if centred is None else centred))
    out = []
    bar = MATCH_THRESHOLD if threshold is None else threshold
    alike = heard @ heard.T >= SPLIT_MIN
    for i, j in zip(*pick):
        by_raw, by_centred = raw[i, j] >= bar, False
        if centred is not None:
            rivals = [r for r in range(len(heard)) if r != i and not alike[i, r]]
            others = np.concatenate([np.delete(centred[i], j), centred[rivals, j]])
            margin = centred[i, j] - (others.max() if len(others) else -1.0)
            # Centring pairs a voice nobody enrolled with a name nobody in the episode has (both differ from
            # the rest in the same way); the raw cosine must still single this voice out for the name and
            # this name out for the voice.
            gap = raw[i, j] - (raw[rivals, j].max() if rivals else 0.0)
            by_centred = bool(centred[i, j] >= CENTRED_MIN and margin >= CENTRED_MARGIN and raw[i, j] >= RAW_FLOOR
                              and gap >= COLUMN_GAP and raw[i, j] >= raw[i].max())
        if by_raw or by_centred:
            out.append((int(i), int(cols[j])))
        # Warn on the scores the decision rested on: a match the centred test also makes is not on a knife edge.
        _warn_if_close(raw if centred is None else centred, raw, i, j, bar, by_raw or by_centred,
                       not by_centred, rows, names, cols)
    return out


def split_voices(heard: np.ndarray, enrolled: np.ndarray, cols: list[int], pairs: list[tuple[int, int]]
                 ) -> list[tuple[int, int]]:
    """More (row, name) pairs for voices `decide` left unnamed: one the diarizer split off a named voice
    takes that name too. A left-over voice qualifies when, centred as `decide` centres, its best name is one
    already taken, by at least CENTRED_MIN and CENTRED_MARGIN over its other names, with a raw cosine of
    RAW_FLOOR or more, and it sounds like the voice holding that name (raw cosine SPLIT_MIN or more) more
    than like any other voice of the episode."""
    a, b = _centred(heard), _centred(enrolled)
    if a is None or b is None:
        return []
    holder = {j: i for i, j in pairs}
    centred, raw, voices = a @ b[cols].T, heard @ enrolled[cols].T, heard @ heard.T
    out = []
    for i in range(len(heard)):
        if i in {r for r, _ in pairs}:
            continue
        k = int(np.argmax(centred[i]))
        j = cols[k]
        if j not in holder:
            continue
        others = np.delete(centred[i], k)
        alike = np.delete(voices[i], i)
        if (centred[i, k] >= CENTRED_MIN and centred[i, k] - (others.max() if len(others) else -1.0) >= CENTRED_MARGIN
                and raw[i, k] >= RAW_FLOOR and voices[i, holder[j]] >= SPLIT_MIN
                and voices[i, holder[j]] >= alike.max()):
            log.info("speakers: voice %d is %s's too (a split of one voice: %.3f alike)", i, j, voices[i, holder[j]])
            out.append((i, j))
    return out


def _warn_if_close(score, raw, i, j, bar, ok, on_bar, rows, names, cols) -> None:
    """One line when a voice scores two names within CLOSE_NAMES of each other, or when a decision that
    rests on the raw bar (`on_bar`) sits within CLOSE_THRESHOLD of it."""
    who = rows[i] if rows else f"voice {i}"
    name = names[cols[j]] if names else f"name {cols[j]}"
    order = np.argsort(-score[i])
    if len(order) > 1 and score[i, order[0]] - score[i, order[1]] < CLOSE_NAMES:
        first, second = (names[cols[k]] if names else str(k) for k in order[:2])
        log.warning("speakers: %s sounds as much like %s (%.3f) as %s (%.3f); check who it is", who, first,
                    raw[i, order[0]], second, raw[i, order[1]])
    if on_bar and abs(raw[i, j] - bar) < CLOSE_THRESHOLD:
        log.warning("speakers: %s %s %s at %.3f, within %.2f of the %.2f threshold; check who it is", who,
                    "named" if ok else "not named", name, raw[i, j], CLOSE_THRESHOLD, bar)


# CAM++ voice prints (campplus.py), measured on 36 episodes of real-voice panels (bench/panels.py: 18 panels of
# three or four women, clean and as 32 kbps phone lines, each named from studio samples heard through the
# episode's channel): a voice and its own sample 0.74-0.92 (5th percentile 0.78), a voice and anyone else's
# sample 0.30-0.72 (95th percentile 0.65), the voice nobody enrolled included; two halves of one reader split
# by the diarizer 0.86-0.90, two readers of one episode 0.38-0.77 (campplus.SAME_PERSON: alike enough to be one).
PRINT_MATCH = 0.72


def match_prints(heard: np.ndarray, enrolled: np.ndarray, cols: list[int], threshold: float | None = None, *,
                 rows: list[str] | None = None, names: list[str] | None = None) -> list[tuple[int, int]]:
    """(row of `heard`, row of `enrolled`) pairs for CAM++ prints. Voices and the free names `cols` are paired
    one-to-one by raw cosine; a pair is taken when its cosine reaches PRINT_MATCH (or `threshold`) and is the
    best of its voice's row and of its name's column. Two voices as alike as campplus.SAME_PERSON are halves
    of one that the diarizer split: they do not compete for a name, and a left-over half takes the name its
    other half holds when that is its own best."""
    from scipy.optimize import linear_sum_assignment

    bar = PRINT_MATCH if threshold is None else threshold
    raw = heard @ enrolled[cols].T
    alike = heard @ heard.T >= SAME_PERSON
    out = []
    for i, j in zip(*linear_sum_assignment(-raw)):
        rivals = [r for r in range(len(heard)) if r != i and not alike[i, r]]
        ok = raw[i, j] >= bar and raw[i, j] >= raw[i].max() and (not rivals or raw[i, j] >= raw[rivals, j].max())
        if ok:
            out.append((int(i), int(cols[j])))
        if raw[i].max() >= bar - CLOSE_THRESHOLD:  # a voice no name comes near is Unknown, whichever is closest
            _warn_if_close(raw, raw, i, j, bar, ok, True, rows, names, cols)
    holder = {j: i for i, j in out}
    for i in sorted(set(range(len(heard))) - {i for i, _ in out}):
        k = int(np.argmax(raw[i]))
        if cols[k] in holder and raw[i, k] >= bar and alike[i, holder[cols[k]]]:
            log.info("speakers: voice %d is %s's too (a split of one voice)", i, names[cols[k]] if names else cols[k])
            out.append((i, cols[k]))
    return out
