"""Quality on real speech: word error rate and word timing against reference transcripts.

Real speech at hand: the two-person phone call that ships in pyannote.audio's wheel (sample.wav, with its
reference words in sample.stm and its turns in sample.rttm), and the demo panel (audio/panel.truth.json).
Text is normalised with openai-whisper's English normaliser before scoring, as Whisper's own papers do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
PANEL_TRUTH = ROOT / "audio" / "panel.truth.json"


@dataclass(frozen=True)
class Utterance:
    speaker: str
    start: float
    end: float
    text: str


def pyannote_sample() -> Path:
    """The folder in pyannote.audio's wheel with sample.wav, sample.stm and sample.rttm."""
    import importlib.util

    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pyannote.audio is not installed: its sample.wav is the real speech we test on")
    return Path(list(spec.submodule_search_locations)[0]) / "sample"


def read_stm(path: Path) -> list[Utterance]:
    """STM lines: `file channel speaker start end words...`."""
    out = []
    for line in path.read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 5 or line.startswith(";;"):
            continue
        out.append(Utterance(parts[2], float(parts[3]), float(parts[4]), parts[5] if len(parts) > 5 else ""))
    return out


def panel_utterances(truth: Path = PANEL_TRUTH, *, until: float | None = None) -> list[Utterance]:
    turns = json.loads(truth.read_text())["turns"]
    return [Utterance(t["speaker"], t["start"], t["end"], t["text"]) for t in turns
            if until is None or t["end"] <= until]


_normalizer = None


def normalize(text: str) -> str:
    global _normalizer
    if _normalizer is None:
        from whisper.normalizers import EnglishTextNormalizer

        _normalizer = EnglishTextNormalizer()
    return _normalizer(text)


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))


def transcript_text(segments: Iterable) -> str:
    """The words of engine segments or transcript segments, in order."""
    return " ".join(w.word for s in segments for w in s.words)


def words_in_their_utterance(utterances: Sequence[Utterance], words: Sequence, tolerance: float = 0.5) -> float:
    """Share of matched hypothesis words whose times lie inside their reference utterance's span ± tolerance.

    Words are matched to reference words by jiwer's alignment of the normalised texts; a hypothesis word is
    matched when the alignment calls it equal to a reference word, whose utterance it then belongs to.
    """
    import jiwer

    ref_tokens: list[tuple[str, int]] = []
    for i, u in enumerate(utterances):
        ref_tokens += [(t, i) for t in normalize(u.text).split()]
    hyp_tokens: list[tuple[str, int]] = []
    for j, w in enumerate(words):
        hyp_tokens += [(t, j) for t in normalize(w.word).split()]
    out = jiwer.process_words(" ".join(t for t, _ in ref_tokens), " ".join(t for t, _ in hyp_tokens))
    inside = matched = 0
    for chunk in out.alignments[0]:
        if chunk.type != "equal":
            continue
        for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
            u = utterances[ref_tokens[chunk.ref_start_idx + k][1]]
            w = words[hyp_tokens[chunk.hyp_start_idx + k][1]]
            matched += 1
            inside += u.start - tolerance <= w.start and w.end <= u.end + tolerance
    return inside / matched if matched else 0.0
