"""Speaker diarizers behind one small interface, chosen by name from REGISTRY.

Adding a diarizer is one module with a class that follows `DiarizerClass` (DiarizerBase gives the defaults),
plus one REGISTRY line."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ModelError, UsageError
from ..types import ProgressHook, Turn

if TYPE_CHECKING:  # numpy stays unimported until a diarizer runs: the CLI's help lists DIARIZERS from here
    import numpy as np

log = logging.getLogger("majlis")


@dataclass(frozen=True)
class Diarization:
    # Turns as detected, overlaps kept; labels like SPEAKER_00.
    turns: tuple[Turn, ...]
    # The same turns made overlap-free: what words are assigned by.
    exclusive: tuple[Turn, ...]
    # Where a segmentation model clearly hears one speaker alone (builtin only): the word re-check trusts it
    # over a word's 1 s voice window.
    alone: tuple[Turn, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({t.speaker for t in self.turns}))

    def to_dict(self) -> dict[str, Any]:
        out = {"turns": [t.to_dict() for t in self.turns], "exclusive": [t.to_dict() for t in self.exclusive]}
        return {**out, "alone": [t.to_dict() for t in self.alone]} if self.alone else out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Diarization":
        return cls(*(tuple(Turn.from_dict(t) for t in d.get(key, ())) for key in ("turns", "exclusive", "alone")))


class Diarizer(Protocol):
    name: str  # recorded in the transcript's engines, e.g. "builtin:resemblyzer"

    def diarize(self, audio: np.ndarray, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None, hook: ProgressHook | None = None) -> Diarization:
        """Diarize 16 kHz mono float32 samples."""
        ...

    def close(self) -> None:
        """Release what the diarizer holds outside this process."""
        ...


class DiarizerClass(Protocol):
    """What the registry needs of a diarizer class, before any instance (or weight) exists."""

    @classmethod
    def unavailable(cls, **choice: Any) -> str | None:
        """Why "auto" should not try this diarizer here (None: worth a try). Offline and instant. `choice`:
        pipeline, hf_token, device."""
        ...

    def __call__(self, **choice: Any) -> Diarizer: ...


class DiarizerBase:
    """The protocol's defaults, for a diarizer class to inherit."""

    name = ""

    @classmethod
    def unavailable(cls, **choice: Any) -> str | None:
        return None

    def close(self) -> None:
        pass


# name -> "module:Class" under majlis.diarize. Registry order is the order "auto" tries them in; the last is
# the offline one it falls back on.
REGISTRY: dict[str, str] = {
    "pyannote": "pyannote:PyannoteDiarizer",
    "builtin": "builtin:BuiltinDiarizer",
}
DIARIZERS = ("auto", *REGISTRY)


def diarizer_class(name: str) -> DiarizerClass:
    """The class registered as `name`, its module imported but nothing loaded."""
    module, attr = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


def get_diarizer(
    name: str = "auto",
    *,
    pipeline: str | None = None,
    hf_token: str | None = None,
    device: str | None = None,
) -> Diarizer:
    """Load a diarizer once; "auto" takes the first registered one that is here (or can be fetched) and
    loads, else the last, offline one."""
    choice = (name or "auto").strip().lower()
    if choice not in DIARIZERS:
        raise UsageError(f"unknown diarizer {name!r} (choose {', '.join(DIARIZERS)})")
    given = {"pipeline": pipeline, "hf_token": hf_token, "device": device}
    if choice != "auto":
        return diarizer_class(choice)(**given)
    *better, last = REGISTRY
    for candidate in better:
        cls = diarizer_class(candidate)
        why = cls.unavailable(**given)
        if why is None:
            try:
                return cls(**given)
            except ModelError as e:
                why = str(e)
        log.warning("diarizer: using %s (offline) because %s is unavailable: %s", last, candidate, why)
    return diarizer_class(last)(**given)
