"""Hard panels of real voices with exact truth, built from the shared LibriSpeech readers, and the scores
that judge a diarization against them (DER, words on the right speaker, overlap coverage).

Used by bench/speakers.py and by the tests (which put bench/ on sys.path). A panel is deterministic for
its seed: same-sex readers, mostly 1-3 s turns cut at the readers' own pauses, back-channels, 0.3-1 s
overlaps, levels that differ by a few dB. Each reader's first utterances are kept out of the panel as
their voice sample. The LibriSpeech clips have no transcripts, so the "words" scored are word-sized units
(0.2-0.6 s) of each turn cut at energy dips; a real transcript (sample.stm) is scored word by word.
"""

from __future__ import annotations

import re
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SR = 16000
HOP = 160
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech"
for _p in (Path("/work/shared/data/librispeech"),):
    if not SHARED.exists() and _p.exists():
        SHARED = _p

# Readers with ten utterances each (test-other): one man, five women.
WOMEN = ("1998", "3080", "3331", "367", "533")
SAMPLE_UTTERANCES = 2  # utterances 0..1 of each reader are their voice sample, the rest feed the panel


@dataclass(frozen=True)
class Panel:
    samples: np.ndarray  # 16 kHz mono float32
    turns: tuple  # (speaker, start, end): exact extents of each voice's speech, overlaps included
    words: tuple  # (speaker, start, end): word-sized units, none inside an overlap
    enrollment: dict = field(default_factory=dict)  # speaker -> list of sample arrays (kept out of the panel)

    @property
    def duration(self) -> float:
        return len(self.samples) / SR

    @property
    def speakers(self) -> list[str]:
        return sorted({t[0] for t in self.turns})


def load_clip(path: Path) -> np.ndarray:
    from majlis.audio import decode

    return decode(path)


def _db(x: np.ndarray) -> np.ndarray:
    n = len(x) // HOP
    f = x[: n * HOP].reshape(n, HOP)
    return 10 * np.log10((f * f).mean(axis=1) + 1e-10)


def phrases(x: np.ndarray, min_pause: int = 12) -> list[tuple[int, int]]:
    """(start, end) samples of the stretches of speech between pauses of `min_pause` frames (0.12 s) or more."""
    db = _db(x)
    voiced = db > max(np.percentile(db, 95) - 30, np.percentile(db, 10) + 8)
    idx = np.flatnonzero(voiced)
    if len(idx) == 0:
        return []
    out, start, last = [], idx[0], idx[0]
    for f in idx[1:]:
        if f - last > min_pause:
            out.append((start, last + 1))
            start = f
        last = f
    out.append((start, last + 1))
    return [(a * HOP, b * HOP) for a, b in out if b - a >= 15]


def word_units(x: np.ndarray, lo: float = 0.2, hi: float = 0.6) -> list[tuple[int, int]]:
    """Word-sized pieces (samples) of a stretch of speech, cut at the quietest frame in each window."""
    db = _db(x)
    n = len(db)
    out, a = [], 0
    lo_f, hi_f = int(lo * 100), int(hi * 100)
    while n - a > hi_f:
        cut = a + lo_f + int(np.argmin(db[a + lo_f : a + hi_f]))
        out.append((a * HOP, cut * HOP))
        a = cut
    if n - a >= 5:
        out.append((a * HOP, n * HOP))
    return out


def reader_clips(reader: str, root: Path = SHARED) -> list[Path]:
    return sorted((root / "test-other" / reader).glob("*.flac"))


def make_panel(seed: int = 0, readers: tuple[str, ...] = WOMEN[:3], *, seconds: float = 60.0,
               short_turns: tuple[float, float] = (1.0, 3.0), long_share: float = 0.25,
               backchannel_share: float = 0.15, overlap_share: float = 0.25, root: Path = SHARED) -> Panel:
    """A conversation of `readers` (LibriSpeech ids) about `seconds` long. Turns are whole phrases of one
    reader (no word is cut): most 1-3 s, a `long_share` of 4-8 s; a `backchannel_share` of turns is a
    short phrase (<= 0.8 s) said over the current speaker; an `overlap_share` of turns starts 0.3-1 s
    before the previous one ends."""
    rng = np.random.default_rng(seed)
    pool: dict[str, list[np.ndarray]] = {}
    enroll: dict[str, list[np.ndarray]] = {}
    for r in readers:
        clips = reader_clips(r, root)
        if len(clips) <= SAMPLE_UTTERANCES:
            raise FileNotFoundError(f"reader {r}: no clips under {root}")
        enroll[r] = [load_clip(p) for p in clips[:SAMPLE_UTTERANCES]]
        pieces = []
        for p in clips[SAMPLE_UTTERANCES:]:
            x = load_clip(p)
            x = x / (np.sqrt(np.mean(x**2)) + 1e-9) * 0.05  # every reader at one level, then a random offset
            pieces += [x[a:b] for a, b in phrases(x, min_pause=6)]
        rng.shuffle(pieces)
        gain = 10 ** (rng.uniform(-3, 3) / 20)
        pool[r] = [p * gain for p in pieces]

    def take(r: str, lo: float, hi: float) -> np.ndarray | None:
        """Consecutive phrases of r joined by their own short pauses until lo..hi seconds."""
        got: list[np.ndarray] = []
        total = 0.0
        target = rng.uniform(lo, hi)
        while pool[r] and total < target:
            p = pool[r].pop()
            if total and total + len(p) / SR > hi:
                pool[r].insert(0, p)
                break
            if got:
                gap = np.zeros(int(rng.uniform(0.1, 0.3) * SR), np.float32)
                got.append(gap)
                total += len(gap) / SR
            got.append(p)
            total += len(p) / SR
        return np.concatenate(got) if got else None

    placed: list[tuple[str, int, np.ndarray]] = []  # (speaker, start sample, audio)
    t = int(0.5 * SR)
    current = rng.choice(readers)
    while t < seconds * SR:
        others = [r for r in readers if r != current]
        nxt = str(rng.choice(others))
        if rng.random() < backchannel_share:
            # Someone else's short phrase said over the current speaker's turn.
            bc = next((p for p in pool[nxt] if len(p) <= 0.8 * SR), None)
            last = next((pl for pl in reversed(placed) if pl[0] == current), None)
            if bc is not None and last is not None and len(last[2]) > 1.5 * SR:
                pool[nxt] = [p for p in pool[nxt] if p is not bc]
                at = last[1] + int(rng.uniform(0.3, 0.9) * (len(last[2]) - len(bc)))
                placed.append((nxt, at, bc))
                continue
        long = rng.random() < long_share
        piece = take(nxt, *((4.0, 8.0) if long else short_turns))
        if piece is None:
            break
        if placed and rng.random() < overlap_share:
            start = t - int(rng.uniform(0.3, 1.0) * SR)
            prev = placed[-1]
            start = max(start, prev[1] + int(0.5 * SR))
        else:
            start = t + int(rng.uniform(0.1, 0.6) * SR)
        placed.append((nxt, start, piece))
        t = start + len(piece)
        current = nxt
    n = max(s + len(a) for _, s, a in placed) + int(0.5 * SR)
    mix = np.zeros(n, np.float32)
    for _, s, a in placed:
        mix[s : s + len(a)] += a
    mix += (rng.standard_normal(n) * 10 ** (-60 / 20)).astype(np.float32)  # a faint floor, not digital zero
    turns = sorted(((r, s / SR, (s + len(a)) / SR) for r, s, a in placed), key=lambda x: x[1])
    words = []
    for r, s, a in placed:
        for ps, pe in phrases(a, min_pause=8):
            for ws, we in word_units(a[ps:pe]):
                ws_t, we_t = (s + ps + ws) / SR, (s + ps + we) / SR
                others = [x for x in turns if x[0] != r and x[1] < we_t and ws_t < x[2]]
                if not others:
                    words.append((r, ws_t, we_t))
    return Panel(mix, tuple(turns), tuple(sorted(words, key=lambda w: w[1])), enroll)


def telephone(samples: np.ndarray, kbps: int = 32) -> np.ndarray:
    """The recording as a phone call reaches an archive: 300-3,400 Hz, 8 kHz, `kbps` mp3, decoded back."""
    import tempfile

    from majlis.audio import decode, ffmpeg_binary

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "phone.mp3"
        write_wav(src, samples)
        subprocess.run([ffmpeg_binary(), "-v", "error", "-y", "-i", str(src), "-af",
                        "highpass=f=300:poles=2,lowpass=f=3400:poles=2,highpass=f=300,lowpass=f=3400",
                        "-ar", "8000", "-ac", "1", "-b:a", f"{kbps}k", str(dst)], check=True)
        return decode(dst)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


# ------------------------------------------------------------------------------------ pyannote's sample


def pyannote_sample() -> tuple[Path, tuple, tuple]:
    """sample.wav, its reference turns (sample.rttm) and words (sample.stm utterances, each word given a
    share of its utterance's time in proportion to its letters)."""
    import pyannote.audio

    folder = Path(pyannote.audio.__file__).parent / "sample"
    turns = []
    for line in (folder / "sample.rttm").read_text().splitlines():
        f = line.split()
        turns.append((f[7], float(f[3]), float(f[3]) + float(f[4])))
    utterances, words = [], []
    for line in (folder / "sample.stm").read_text().splitlines():
        f = line.split(maxsplit=5)
        who, a, b, text = f[2], float(f[3]), float(f[4]), f[5]
        tokens = text.split()
        weights = np.array([len(re.sub(r"\W", "", w)) + 1 for w in tokens], float)
        edges = a + (b - a) * np.concatenate([[0], np.cumsum(weights) / weights.sum()])
        words += [(who, float(edges[i]), float(edges[i + 1]), w) for i, w in enumerate(tokens)]
        utterances.append((who, a, b))
    # The rttm says speaker90/speaker91, the stm Diane/Sheila: one set of names for both.
    names = mapping(utterances, turns)
    turns = [(names.get(s, s), a, b) for s, a, b in turns]
    return folder / "sample.wav", tuple(turns), tuple(words)


def truth_file(path: Path) -> tuple[tuple, tuple]:
    """Turns and words of a flite panel's truth file (audio/make_panel.py): each turn's words share its
    time in proportion to their letters, as sample.stm's words do."""
    import json

    turns, words = [], []
    for t in json.loads(Path(path).read_text())["turns"]:
        turns.append((t["speaker"], t["start"], t["end"]))
        tokens = t["text"].split()
        weights = np.array([len(re.sub(r"\W", "", w)) + 1 for w in tokens], float)
        edges = t["start"] + (t["end"] - t["start"]) * np.concatenate([[0], np.cumsum(weights) / weights.sum()])
        words += [(t["speaker"], float(edges[i]), float(edges[i + 1]), w) for i, w in enumerate(tokens)]
    return tuple(turns), tuple(words)


# ----------------------------------------------------------------------------------------------- scores


def _overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def der(reference, hypothesis, collar: float = 0.25) -> float:
    """Diarization error rate (pyannote.metrics; overlaps scored) of (speaker, start, end) turns."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    def ann(turns):
        a = Annotation()
        for i, (s, t0, t1) in enumerate(turns):
            a[Segment(t0, t1), i] = s
        return a

    with warnings.catch_warnings():  # "uem approximated by the extents": what we mean
        warnings.simplefilter("ignore")
        return float(DiarizationErrorRate(collar=collar, skip_overlap=False)(ann(reference), ann(hypothesis)))


def mapping(reference, hypothesis) -> dict[str, str]:
    """Hypothesis label -> reference speaker: the one-to-one pairing that shares the most time."""
    from scipy.optimize import linear_sum_assignment

    refs = sorted({t[0] for t in reference})
    hyps = sorted({t[0] for t in hypothesis})
    if not refs or not hyps:
        return {}
    m = np.zeros((len(hyps), len(refs)))
    for h, a0, a1 in hypothesis:
        for r, b0, b1 in reference:
            m[hyps.index(h), refs.index(r)] += _overlap(a0, a1, b0, b1)
    rows, cols = linear_sum_assignment(-m)
    return {hyps[i]: refs[j] for i, j in zip(rows, cols)}


def words_right(words, said_by, *, named: bool = False, reference=()) -> float:
    """Share of reference words (speaker, start, end, ...) whose assigned speaker `said_by[i]` is right:
    the same name when `named`, else the reference speaker its label maps to one-to-one (by time shared
    with the reference turns)."""
    if not words:
        return 0.0
    if named:
        table = None
    else:
        hyp = [(s, w[1], w[2]) for s, w in zip(said_by, words)]
        table = mapping(reference or [(w[0], w[1], w[2]) for w in words], hyp)
    right = sum((s if table is None else table.get(s)) == w[0] for s, w in zip(said_by, words))
    return right / len(words)


def transcript_words_right(reference_words, reference_turns, words, turns) -> tuple[float, int]:
    """Words of a real transcript on the right speaker: its words (speaker, start, end, text), at the times the
    ASR heard them, are matched to the reference words by their text (in order, as WER aligns them); a label
    stands for the reference speaker it shares most time with, one to one (`turns`: the transcript's). Returns
    (share of matched words right, words matched). The reference words' own times are a share of their
    utterance's (sample.stm has no word times), so this, not words_right, says what a reader of the
    transcript gets at a change of speaker."""
    import difflib

    def norm(text):
        return re.sub(r"[^a-z0-9']", "", text.lower())

    blocks = difflib.SequenceMatcher(a=[norm(w[3]) for w in reference_words], b=[norm(w[3]) for w in words],
                                     autojunk=False).get_matching_blocks()
    pairs = [(i + k, j + k) for i, j, n in blocks for k in range(n)]
    if not pairs:
        return 0.0, 0
    table = mapping(reference_turns, turns)
    right = sum(table.get(words[j][0]) == reference_words[i][0] for i, j in pairs)
    return right / len(pairs), len(pairs)


def overlap_coverage(reference, hypothesis) -> float | None:
    """Share of the reference's overlapped time (two voices) where the hypothesis also has two turns."""
    def two(turns):
        edges = sorted({t for _, a, b in turns for t in (a, b)})
        out = []
        for a, b in zip(edges, edges[1:]):
            mid = (a + b) / 2
            if len({s for s, t0, t1 in turns if t0 <= mid < t1}) >= 2:
                out.append((a, b))
        return out

    ref2, hyp2 = two(reference), two(hypothesis)
    total = sum(b - a for a, b in ref2)
    if total <= 0:
        return None
    return sum(_overlap(a, b, c, d) for a, b in ref2 for c, d in hyp2) / total


def assign_words(words, diarization, samples=None) -> list:
    """The majlis Word (speaker, speaker_confidence, overlap) given to each reference word, through the
    alignment the pipeline runs: with `samples`, each word's speaker is also re-checked by its own voice."""
    from majlis import align
    from majlis.types import Segment, Word

    seg = Segment(0, "", 0.0, 0.0, "", tuple(Word(f"w{i}", w[1], w[2]) for i, w in enumerate(words)))
    try:
        from majlis import attribution
    except ImportError:  # majlis before the word re-check: the bench measures it too
        out = align.align_words([seg], diarization.exclusive, duration=max(w[2] for w in words) + 1)
    else:
        heard_alone = {"alone": diarization.alone} if hasattr(diarization, "alone") else {}
        recheck = None if samples is None else (
            lambda ws: attribution.recheck(samples, ws, diarization.exclusive, **heard_alone))
        out = align.align_words([seg], diarization.exclusive, duration=max(w[2] for w in words) + 1,
                                turns=diarization.turns, recheck=recheck)
    got = {w.word: w for s in out for w in s.words}
    return [got[f"w{i}"] for i in range(len(words))]
