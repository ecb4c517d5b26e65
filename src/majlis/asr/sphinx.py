"""Offline English recognition with pocketsphinx and the acoustic/language model inside its wheel.

The recording is decoded chunk by chunk (cut at pauses, see chunks.py) with one reused Decoder, so long
files stay fast and memory stays flat.
"""

from __future__ import annotations

import re
import threading
from typing import Any, ClassVar

import numpy as np

from ..audio import release
from ..errors import ModelError, UsageError
from ..types import ProgressHook, Word, WordsHook
from . import AsrEngineBase, AsrResult, build_segments, chunks

FRAMES_PER_SECOND = 100
# pocketsphinx's search holds the GIL; between 0.25 s blocks other threads (progress, a web server) get a turn.
BLOCK_SAMPLES = 4000
# A pause this long inside a chunk starts a new segment.
SEGMENT_GAP = 0.5
_ALT_PRONUNCIATION = re.compile(r"\(\d+\)$")

# A tighter cap on active HMMs and no second (flat-lexicon) pass: on the first 80 s of the demo panel
# this cut compute from 0.33 to 0.19 s per audio second, and the word error rate went 0.25 -> 0.23.
DECODER_CONFIG: dict[str, Any] = {"maxhmmpf": 5000, "fwdflat": False}


def supports(language: str | None, task: str) -> bool:
    return (language is None or language.lower() in ("en", "english")) and task == "transcribe"


def check(language: str | None, task: str) -> None:
    if task != "transcribe":
        raise UsageError(f"sphinx cannot {task}: it only transcribes English (use {{asr}} whisper)", arguments=("asr",))
    if not supports(language, task):
        raise UsageError(f"sphinx only knows English, not {language!r} (use {{asr}} whisper for other languages)",
                         arguments=("asr",))


def _is_filler(word: str) -> bool:
    return word.startswith("<") or word.startswith("[") or word.startswith("++")


class SphinxAsr(AsrEngineBase):
    name = "sphinx:en-us"
    # pocketsphinx never releases the GIL while it searches: beside a diarizer it belongs in its own process.
    holds_gil: ClassVar[bool] = True
    options: ClassVar[frozenset[str]] = frozenset()  # its one model ships in its wheel

    @classmethod
    def unavailable(cls, *, language: str | None = None, task: str = "transcribe", **_: Any) -> None:
        check(language, task or "transcribe")  # its model is always here; only English transcription is not

    def __init__(self, *, language: str | None = None, task: str = "transcribe", **config: Any) -> None:
        check(language, task)
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise ModelError(f"pocketsphinx is not installed ({e}); install majlis with its dependencies") from None
        try:
            self._decoder = Decoder(samprate=chunks.SAMPLE_RATE, loglevel="FATAL", **{**DECODER_CONFIG, **config})
        except (RuntimeError, ValueError) as e:
            raise ModelError(f"cannot load the pocketsphinx en-us model: {e}") from None
        # How a child process loads the same engine through get_asr (which knows no decoder tweaks).
        self.respawn = None if config else ("sphinx", {"language": language, "task": task})
        # One Decoder serves every file; batch or pipeline threads must take turns on it.
        self._lock = threading.Lock()

    def _decode_chunk(self, pcm: np.ndarray, offset: float) -> list[Word]:
        d = self._decoder
        d.start_utt()
        for i in range(0, len(pcm), BLOCK_SAMPLES):
            d.process_raw(pcm[i : i + BLOCK_SAMPLES].tobytes(), False, False)
        d.end_utt()
        words: list[Word] = []
        for s in d.seg():
            if _is_filler(s.word):
                continue
            token = _ALT_PRONUNCIATION.sub("", s.word)
            # No probability: without a lattice pass pocketsphinx reports 1.0 for every word.
            words.append(
                Word(token, offset + s.start_frame / FRAMES_PER_SECOND, offset + (s.end_frame + 1) / FRAMES_PER_SECOND)
            )
        return words

    def transcribe(self, audio: np.ndarray, *, hook: ProgressHook | None = None,
                   on_words: WordsHook | None = None) -> AsrResult:
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = len(samples) / chunks.SAMPLE_RATE
        if hook:
            hook("asr", 0.0, duration)
        parts = chunks.chunk(samples)
        groups: list[tuple[list[Word], None]] = []
        with self._lock:
            # The front end adapts (cepstral mean and more) as it hears audio; restarting it per recording
            # keeps a file's words independent of the files this process transcribed before it.
            self._decoder.reinit_feat()
            for c in parts:
                pcm = (np.clip(samples[c.start : c.end], -1.0, 1.0) * 32767.0).astype("<i2")
                release(samples)  # a mapped recording keeps no more than a chunk in memory
                words = self._decode_chunk(pcm, c.start_s)
                run: list[Word] = []
                for w in words:
                    if run and w.start - run[-1].end >= SEGMENT_GAP:
                        groups.append((run, None))
                        run = []
                    run.append(w)
                if run:
                    groups.append((run, None))
                if on_words and words:
                    on_words(words)
                if hook:
                    hook("asr", c.end_s, duration)
        if hook:
            hook("asr", duration, duration)
        return AsrResult("en", build_segments(groups, duration))
