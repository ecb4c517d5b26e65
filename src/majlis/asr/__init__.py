"""Speech recognisers behind one small interface, chosen by name from REGISTRY.

The pipeline only sees `AsrEngine`; engine modules import their heavy libraries lazily. Adding an engine is one
module with a class that follows `EngineClass` (AsrEngineBase gives the defaults), plus one REGISTRY line.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Protocol, Sequence

from ..errors import ModelError, UsageError
from ..types import ProgressHook, Segment, Word, WordsHook

if TYPE_CHECKING:  # numpy stays unimported until an engine runs: the CLI's help lists ENGINES from here
    import numpy as np

log = logging.getLogger("majlis")

# name -> "module:Class" under majlis.asr. Registry order is the order "auto" tries them in: the best real
# Whisper that can run here without a download, and sphinx only when none can.
REGISTRY: dict[str, str] = {
    "whisper": "whisper:WhisperAsr",
    "faster-whisper": "faster_whisper:FasterWhisperAsr",
    "sphinx": "sphinx:SphinxAsr",
}
ENGINES = ("auto", *REGISTRY)
# What every engine takes; the rest of a choice (model, beam_size, ...) only the engines that list it.
COMMON_OPTIONS = frozenset({"language", "task"})
# Hints an engine may use or ignore, never an error: where model caches are, where to run, and the enrolled
# speakers' names (spellings to favour).
HINTS = frozenset({"model_dir", "device", "speaker_names"})


@dataclass(frozen=True)
class AsrResult:
    language: str
    # Engine segments in time order; speaker is "" until alignment assigns one. Words carry times.
    segments: tuple[Segment, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"language": self.language, "segments": [s.to_dict() for s in self.segments]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AsrResult":
        return cls(str(d["language"]), tuple(Segment.from_dict(s) for s in d["segments"]))


class AsrEngine(Protocol):
    name: str  # recorded in the transcript's engines, e.g. "sphinx:en-us", "faster-whisper:tiny.en"
    # True when the engine never releases the GIL while it computes: beside a diarizer it then runs in a
    # process of its own (asr/child.py) instead of a thread.
    holds_gil: ClassVar[bool]

    def transcribe(self, audio: np.ndarray, *, hook: ProgressHook | None = None,
                   on_words: WordsHook | None = None) -> AsrResult:
        """Transcribe 16 kHz mono float32 samples. `on_words` is handed each group of words as soon as it is
        decoded, in time order, so that work on them can start before the whole recording is done (an
        engine in another process never calls it)."""
        ...

    # How a process of its own loads the same engine, (name, options) for get_asr; None: as it was chosen.
    # (sphinx that "auto" fell back to from whisper says it, so that it too runs beside the diarizer.)
    respawn: tuple[str, dict[str, Any]] | None

    def close(self) -> None:
        """Release what the engine holds outside this process (a child process)."""
        ...


class AsrEngineBase:
    """The protocol's defaults, for an engine class to inherit."""

    holds_gil: ClassVar[bool] = False
    options: ClassVar[frozenset[str]] = frozenset()
    respawn: tuple[str, dict[str, Any]] | None = None

    def close(self) -> None:
        pass


class EngineClass(Protocol):
    """What the registry needs of an engine class, before any instance (or weight) exists."""

    holds_gil: ClassVar[bool]
    options: ClassVar[frozenset[str]]  # choice keys it takes beyond language and task

    @classmethod
    def unavailable(cls, **choice: Any) -> str | None:
        """Why this engine cannot run `choice` here without a download (None: it can). Raises UsageError for a
        choice no engine could run. Loads nothing."""
        ...

    def __call__(self, **choice: Any) -> AsrEngine: ...


def engine_class(name: str) -> EngineClass:
    """The class registered as `name`, its module imported but nothing loaded."""
    if name not in REGISTRY:
        raise UsageError(f"unknown ASR engine {name!r}: use one of {', '.join(ENGINES)}")
    module, attr = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


def _given(choice: dict[str, Any]) -> set[str]:
    return {k for k, v in choice.items() if v not in (None, (), "")} - COMMON_OPTIONS - HINTS


def plan_asr(name: str, **choice: Any) -> str:
    """The engine get_asr(name, **choice) loads, decided without loading one, with the errors of a choice that
    cannot work. "auto" takes the first registered engine that accepts every option given and whose weights
    are on this machine; sphinx, the last resort, is taken with one warning line. It never waits on a download."""
    task = choice.get("task") or "transcribe"
    if task not in ("transcribe", "translate"):
        raise UsageError(f"unknown task {task!r}: use transcribe or translate")
    if name != "auto":
        cls = engine_class(name)
        extra = _given(choice) - cls.options
        if extra:
            flags = ", ".join("--" + k.replace("_", "-") for k in sorted(extra))
            raise UsageError(f"the {name} engine does not take {flags}")
        cls.unavailable(**choice)  # raises for a choice this engine can never run
        return name
    return _plan_auto(choice, skip=())


def _plan_auto(choice: dict[str, Any], skip: Iterable[str], why_skipped: Sequence[str] = ()) -> str:
    reasons = list(why_skipped)
    given = _given(choice)
    *whispers, last = [n for n in REGISTRY if n not in skip]
    for candidate in whispers:
        cls = engine_class(candidate)
        if given - cls.options:
            continue
        try:
            why = cls.unavailable(**choice)
        except (UsageError, ModelError) as e:
            why = str(e)
        if why is None:
            return candidate
        reasons.append(why)
    try:
        engine_class(last).unavailable(**{k: choice.get(k) for k in COMMON_OPTIONS})
    except UsageError as e:
        raise ModelError(f"no speech recogniser can run this here: {'; '.join(reasons)}; and {last} cannot "
                         f"stand in ({e})") from None
    log.warning("%s; using the offline %s engine (English only). Pass --model PATH to use a Whisper model.",
                "; ".join(reasons) or "no Whisper model is here", last)
    return last


def own_options(name: str, choice: dict[str, Any]) -> dict[str, Any]:
    """The part of `choice` that the engine `name` takes (auto's last resort is handed no whisper options)."""
    cls = engine_class(name)
    return {k: v for k, v in choice.items() if k in cls.options | COMMON_OPTIONS}


def get_asr(name: str, *, planned: str | None = None, decode_options: dict | None = None,
            **choice: Any) -> AsrEngine:
    """Load the engine `name` ("auto" or a REGISTRY name) once, for any number of recordings. `choice`: model,
    model_dir, language, task, device and the engine's own options (plan_asr checks them); `planned`: what
    plan_asr said of them already, so that "auto" is not weighed (and warned about) twice. `decode_options` go
    to openai-whisper's decoder as they are (e.g. sample_len)."""
    planned = planned or plan_asr(name, **choice)
    tried: list[str] = []
    while True:
        cls = engine_class(planned)
        own = own_options(planned, choice)
        if decode_options is not None and "decode_options" in cls.options:
            own["decode_options"] = decode_options
        try:
            return cls(**own)
        except ModelError as e:
            # Only weights auto found by itself (a cache, a bundled model) may be passed over; a checkpoint the
            # user named that cannot load is said as it is rather than hidden behind an engine switch.
            if name != "auto" or not e.replaceable:
                raise
            tried.append(planned)
            planned = _plan_auto(choice, skip=tried,
                                 why_skipped=[f"{planned} cannot be loaded: {str(e).split(';')[0]}"])


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
