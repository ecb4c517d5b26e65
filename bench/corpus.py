"""Synthetic archive of transcripts for the search benchmark, drawn from real text.

Two sources of words. The topic: the seed article and the demo panel's script, as a first-order Markov
chain over the real word sequence (so phrases like "Islamic Movement" co-occur as in speech). The
background: everyday English with its real word frequencies (the `wordfreq` package's 50,000 most common
English words), so that a 1,000-hour archive has tens of thousands of word types with a Zipf tail, as real
speech of that size does. Each word either continues the topic chain or is a fresh draw: mostly from the
background, sometimes from the topic's own Zipf-like unigram distribution. ~150 words a minute, segments
of 5-30 s, 3-5 speakers an episode from a pool of 40. Deterministic for a given seed.

Without a background (`Language(texts)`, the corpus of the first benchmark run) the whole archive speaks
the seed's ~470 word types: every query word then matches ~5% of all segments, about 100x the posting
lists of a real archive, which is what the `--seed-vocab` comparison in bench/search.py still measures.
"""

from __future__ import annotations

import json
import random
import re
from bisect import bisect
from collections import Counter, defaultdict
from itertools import accumulate
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = Path("/work/shared/seed")
TRUTH = ROOT / "audio" / "panel.truth.json"
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")

STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i in is it its of on or she that the their "
    "there they this to was we were what which who will with you not no so do did can our been also".split()
)
SURNAMES = (
    "Tahir Mudaqiq Tolibov Pannier Karimova Rashidov Saidov Nazarov Yusupova Ergashev Abdullaev Khodjaev "
    "Petrov Ivanova Smith Johnson Brown Garcia Miller Davis Wilson Moore Taylor Anderson Thomas Jackson White "
    "Harris Martin Thompson Lewis Walker Hall Allen Young King Wright Lopez Hill Scott"
).split()


def source_texts() -> list[str]:
    texts = [p.read_text(errors="replace") for p in sorted(SEED_DIR.glob("*.txt"))]
    if TRUTH.exists():
        texts.extend(_truth_texts(json.loads(TRUTH.read_text())))
    if not texts:
        raise RuntimeError(f"no source text: {SEED_DIR}/*.txt and {TRUTH} are both missing")
    return texts


def _truth_texts(data) -> list[str]:
    # The truth file's exact shape belongs to make_panel.py: take every "text" string in it.
    out: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k == "text" and isinstance(v, str):
                out.append(v)
            else:
                out.extend(_truth_texts(v))
    elif isinstance(data, list):
        for v in data:
            out.extend(_truth_texts(v))
    return out


def background_words(n: int = 50_000) -> list[tuple[str, float]]:
    """English words with their frequencies in real text (wordfreq: subtitles, news, web, books...)."""
    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError:  # pragma: no cover - it is in the test extras
        raise RuntimeError("the search benchmark's corpus needs wordfreq: pip install -e '.[test]'") from None
    return [(w, word_frequency(w, "en")) for w in top_n_list("en", n) if _WORD.fullmatch(w)]


def archive_language() -> "Language":
    """The benchmark's archive: the topic chain over everyday English."""
    return Language(source_texts(), jump=0.7, background=background_words(), topic=0.05)


class Language:
    """Bigram chain plus Zipf-like unigram jumps over the real word sequence, optionally over a background
    vocabulary with real frequencies."""

    def __init__(self, texts: list[str], jump: float = 0.3, background: list[tuple[str, float]] | None = None,
                 topic: float = 1.0) -> None:
        seq = [w for t in texts for w in _WORD.findall(t)]
        self.sequence = seq
        self.jump = jump
        self.topic = topic if background else 1.0
        counts = Counter(w.lower() for w in seq)
        # Keep the most common surface form of each word (e.g. "Taliban", "IMU").
        forms: dict[str, Counter] = defaultdict(Counter)
        for w in seq:
            forms[w.lower()][w] += 1
        self.vocab = [forms[w].most_common(1)[0][0] for w, _ in counts.most_common()]
        rank = {w: i for i, w in enumerate(self.vocab)}
        # Zipf-Mandelbrot weights by rank: the real counts of a 1,000-word text are too flat in the tail.
        self._cum = list(accumulate(1.0 / (r + 2.7) for r in range(len(self.vocab))))
        nxt: dict[str, list[str]] = defaultdict(list)
        for a, b in zip(seq, seq[1:]):
            nxt[forms[a.lower()].most_common(1)[0][0]].append(forms[b.lower()].most_common(1)[0][0])
        self.next = dict(nxt)
        self.rank = rank
        # A background word the topic also uses takes the topic's spelling ("taliban" -> "Taliban"), so the
        # chain can continue from it.
        topic_form = {w.lower(): w for w in self.vocab}
        self.background = [topic_form.get(w, w) for w, _ in background or ()]
        self._bg_cum = list(accumulate(f for _, f in background or ()))

    def zipf(self, rng: random.Random) -> str:
        return self.vocab[bisect(self._cum, rng.random() * self._cum[-1])]

    def draw(self, rng: random.Random) -> str:
        if self.topic >= 1.0 or rng.random() < self.topic:
            return self.zipf(rng)
        return self.background[bisect(self._bg_cum, rng.random() * self._bg_cum[-1])]

    def words(self, rng: random.Random, n: int, prev: str | None = None) -> list[str]:
        out = []
        for _ in range(n):
            options = self.next.get(prev) if prev else None
            prev = rng.choice(options) if options and rng.random() > self.jump else self.draw(rng)
            out.append(prev)
        return out

    def content_words(self) -> list[str]:
        """The topic's content words: its names and subjects ("Taliban", "Mudaqiq", "pledging")."""
        return [w for w in self.vocab if len(w) >= 4 and w.lower() not in STOPWORDS]

    def background_content_words(self, lo: int = 1_000, hi: int = 30_000) -> list[str]:
        """Everyday English content words between frequency ranks lo and hi ("harbour", "reluctant")."""
        topic = {w.lower() for w in self.vocab}
        return [w for w in self.background[lo:hi] if len(w) >= 4 and w.lower() not in STOPWORDS
                and w.lower() not in topic]

    def phrases(self, rng: random.Random, n: int) -> list[str]:
        """Real 2-3 word sequences from the source text, each with at least one content word."""
        seen, out = set(), []
        tries = 0
        while len(out) < n and tries < 100 * n:
            tries += 1
            k = rng.choice((2, 2, 3))
            i = rng.randrange(len(self.sequence) - k)
            words = self.sequence[i : i + k]
            if not any(len(w) >= 4 and w.lower() not in STOPWORDS for w in words):
                continue
            p = " ".join(words)
            if p.lower() not in seen:
                seen.add(p.lower())
                out.append(p)
        return out


def episodes(lang: Language, hours: float, *, seed: int = 0, start_index: int = 0) -> Iterator[dict]:
    """Yield plain episode specs (episode, speakers, segments as (speaker, start, end, words)) up to `hours`.

    Plain tuples keep generation cheap; `to_transcript` builds the majlis records.
    """
    rng = random.Random(seed * 1_000_003 + start_index)
    total = 0.0
    i = start_index
    target = hours * 3600
    while total < target - 1e-6:
        duration = min(rng.uniform(30, 90) * 60, target - total)
        n_speakers = rng.randint(3, 5)
        speakers = [f"{rng.choice('ABDFJKMNRS')}. {s}" for s in rng.sample(SURNAMES, n_speakers)]
        segs, t, prev = [], 0.0, None
        while t < duration - 1.0:
            seg_len = min(rng.uniform(5, 30), duration - t)
            n_words = max(1, round(seg_len * 2.5 * rng.uniform(0.8, 1.2)))  # ~150 words a minute
            words = lang.words(rng, n_words, prev)
            prev = words[-1]
            segs.append((rng.choice(speakers), t, t + seg_len, words))
            t += seg_len + rng.uniform(0.0, 0.8)
        yield {"episode": f"ep{i:05d}", "duration": duration, "speakers": speakers, "segments": segs}
        total += duration
        i += 1


def to_transcript(spec: dict):
    from majlis.types import Segment, Transcript, Word

    segments = []
    for sid, (speaker, start, end, words) in enumerate(spec["segments"]):
        step = (end - start) / len(words)
        ws = tuple(
            Word(w, start + k * step, start + (k + 0.8) * step, speaker, 0.9) for k, w in enumerate(words)
        )
        text = " ".join(words)
        segments.append(Segment(sid, speaker, start, end, text[:1].upper() + text[1:] + ".", ws))
    return Transcript(
        episode=spec["episode"],
        audio=f"/archive/{spec['episode']}.mp3",
        duration=spec["duration"],
        language="en",
        engines={"asr": "synthetic", "diarizer": "synthetic"},
        speakers=tuple(sorted(spec["speakers"])),
        segments=tuple(segments),
    )


def counts(specs: list[dict]) -> dict[str, float]:
    return {
        "episodes": len(specs),
        "hours": sum(s["duration"] for s in specs) / 3600,
        "segments": sum(len(s["segments"]) for s in specs),
        "words": sum(len(seg[3]) for s in specs for seg in s["segments"]),
    }
