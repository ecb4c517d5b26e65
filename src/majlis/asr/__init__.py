"""Speech recognisers behind one small interface, chosen by name.

The pipeline only sees `AsrEngine`; engine modules import their heavy libraries lazily.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import numpy as np

from ..errors import ModelError, UsageError
from ..types import ProgressHook, Segment, Word

log = logging.getLogger("majlis")

ENGINES = ("auto", "whisper", "sphinx")


@dataclass(frozen=True)
class AsrResult:
    language: str
    # Engine segments in time order; speaker is "" until alignment assigns one. Words carry times.
    segments: tuple[Segment, ...]


class AsrEngine(Protocol):
    name: str  # recorded in the transcript's engines, e.g. "sphinx:en-us", "whisper:base"

    def transcribe(self, audio: np.ndarray, *, hook: ProgressHook | None = None) -> AsrResult:
        """Transcribe 16 kHz mono float32 samples."""
        ...


def get_asr(
    name: str,
    *,
    model: str | None = None,
    model_dir: str | None = None,
    language: str | None = None,
    task: str = "transcribe",
    device: str | None = None,
    decode_options: dict | None = None,
) -> AsrEngine:
    """Load the engine `name` ("auto" | "whisper" | "sphinx") once, for any number of recordings.

    "auto" is whisper when its weights are on this machine (a checkpoint path, or a model already in the
    download folder), else sphinx with one warning: it never waits on a download that cannot happen.
    `decode_options` go to whisper's decoder as they are (e.g. sample_len).
    """
    if task not in ("transcribe", "translate"):
        raise UsageError(f"unknown task {task!r}: use transcribe or translate")
    if name == "sphinx":
        if model is not None:
            raise UsageError("--model picks a whisper model; sphinx has only its bundled en-us model")
        from .sphinx import SphinxAsr

        return SphinxAsr(language=language, task=task)
    if name == "whisper":
        from .whisper import WhisperAsr

        return WhisperAsr(
            model=model, model_dir=model_dir, language=language, task=task, device=device,
            decode_options=decode_options,
        )
    if name == "auto":
        from . import whisper as w

        resolved = w.resolve_model(model, model_dir, device)
        why = f"is not downloaded in {resolved.root}"
        if resolved.available:
            try:
                return w.WhisperAsr(
                    model=model, model_dir=model_dir, language=language, task=task, device=device,
                    decode_options=decode_options,
                )
            except ModelError as e:
                if not resolved.official:
                    raise  # the user named this checkpoint: say why it fails rather than swap engines
                why = f"cannot be loaded from {resolved.root} ({str(e).split(';')[0]})"
        from .sphinx import SphinxAsr, supports

        if not supports(language, task):
            raise w.missing_weights_error(resolved, f"{why}, and sphinx cannot stand in (English transcription only)")
        log.warning(
            "whisper model %s %s; using the offline sphinx engine (English only). "
            "Pass --model PATH to use a whisper checkpoint.",
            resolved.label, why,
        )
        return SphinxAsr(language=language, task=task)
    raise UsageError(f"unknown ASR engine {name!r}: use one of {', '.join(ENGINES)}")


def build_segments(groups: Iterable[tuple[Sequence[Word], str | None]], duration: float) -> tuple[Segment, ...]:
    """Engine output -> Segments whose times are clamped to [0, duration], in order, words inside.

    Each group is (words, text); text None means the words joined by spaces. Groups without words are
    dropped: a segment is a run of timed words.
    """
    segments: list[Segment] = []
    last_start = 0.0
    for words, text in groups:
        fixed: list[Word] = []
        for w in words:
            token = w.word.strip()
            if not token:
                continue
            start = min(max(float(w.start), last_start, 0.0), duration)
            end = min(max(float(w.end), start), duration)
            fixed.append(Word(token, start, end, None, w.probability))
            last_start = start
        if not fixed:
            continue
        body = " ".join(w.word for w in fixed) if text is None else text.strip()
        segments.append(
            Segment(len(segments), "", fixed[0].start, max(w.end for w in fixed), body, tuple(fixed))
        )
    return tuple(segments)
