"""Speech recognisers behind one small interface, chosen by name.

The pipeline only sees `AsrEngine`; engine modules import their heavy libraries lazily.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, Sequence

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


def plan_asr(
    name: str,
    *,
    model: str | None = None,
    model_dir: str | None = None,
    language: str | None = None,
    task: str = "transcribe",
    device: str | None = None,
) -> str:
    """The engine get_asr(name, ...) loads, "whisper" or "sphinx", decided without loading one, with the
    errors of a choice that cannot work. "auto" is whisper when its weights are on this machine (a checkpoint
    path, or a model already in the download folder), else sphinx with one warning: it never waits on a
    download that cannot happen."""
    if task not in ("transcribe", "translate"):
        raise UsageError(f"unknown task {task!r}: use transcribe or translate")
    if name == "sphinx":
        if model is not None:
            raise UsageError("--model picks a whisper model; sphinx has only its bundled en-us model")
        from .sphinx import check

        check(language, task)
        return "sphinx"
    if name == "whisper":
        return "whisper"
    if name == "auto":
        from . import whisper as w

        resolved = w.resolve_model(model, model_dir, device)
        if resolved.available:
            return "whisper"
        _sphinx_instead(resolved, f"is not downloaded in {resolved.root}", language, task)
        return "sphinx"
    raise UsageError(f"unknown ASR engine {name!r}: use one of {', '.join(ENGINES)}")


def engine_class(planned: str) -> type:
    """The class of a planned engine ("whisper" | "sphinx"), its module imported but nothing loaded."""
    if planned == "sphinx":
        from .sphinx import SphinxAsr

        return SphinxAsr
    from .whisper import WhisperAsr

    return WhisperAsr


def get_asr(name: str, *, planned: str | None = None, decode_options: dict | None = None,
            **choice: Any) -> AsrEngine:
    """Load the engine `name` ("auto" | "whisper" | "sphinx") once, for any number of recordings. `choice`:
    plan_asr's model, model_dir, language, task and device; `planned`: what plan_asr said of them already, so
    that "auto" is not weighed (and warned about) twice. `decode_options` go to whisper's decoder as they are
    (e.g. sample_len)."""
    planned = planned or plan_asr(name, **choice)
    language, task = choice.get("language"), choice.get("task", "transcribe")
    if planned == "sphinx":
        return engine_class("sphinx")(language=language, task=task)
    try:
        return engine_class("whisper")(**choice, decode_options=decode_options)
    except ModelError as e:
        if name != "auto":
            raise
        from . import whisper as w

        resolved = w.resolve_model(choice.get("model"), choice.get("model_dir"), choice.get("device"))
        if not resolved.official:
            raise  # the user named this checkpoint: say why it fails rather than swap engines
        _sphinx_instead(resolved, f"cannot be loaded from {resolved.root} ({str(e).split(';')[0]})", language, task)
        return engine_class("sphinx")(language=language, task=task)


def _sphinx_instead(resolved, why: str, language: str | None, task: str) -> None:
    from . import whisper as w
    from .sphinx import supports

    if not supports(language, task):
        raise w.missing_weights_error(resolved, f"{why}, and sphinx cannot stand in (English transcription only)")
    log.warning(
        "whisper model %s %s; using the offline sphinx engine (English only). "
        "Pass --model PATH to use a whisper checkpoint.",
        resolved.label, why,
    )


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
