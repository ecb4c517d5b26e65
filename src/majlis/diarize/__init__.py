"""Speaker diarizers behind one small interface, chosen by name."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import ModelError, UsageError
from ..types import ProgressHook, Turn

log = logging.getLogger("majlis")
DIARIZERS = ("auto", "pyannote", "builtin")


@dataclass(frozen=True)
class Diarization:
    # Turns as detected, overlaps kept; labels like SPEAKER_00.
    turns: tuple[Turn, ...]
    # The same turns made overlap-free: what words are assigned by.
    exclusive: tuple[Turn, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({t.speaker for t in self.turns}))


class Diarizer(Protocol):
    name: str  # recorded in the transcript's engines, e.g. "builtin:resemblyzer"

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        hook: ProgressHook | None = None,
    ) -> Diarization:
        """Diarize 16 kHz mono float32 samples."""
        ...


def get_diarizer(
    name: str = "auto",
    *,
    pipeline: str | None = None,
    hf_token: str | None = None,
    device: str | None = None,
) -> Diarizer:
    """Load a diarizer once; "auto" is pyannote when its pipeline is here or can be fetched, else builtin."""
    choice = (name or "auto").strip().lower()
    if choice not in DIARIZERS:
        raise UsageError(f"unknown diarizer {name!r} (choose {', '.join(DIARIZERS)})")
    if choice == "builtin":
        from .builtin import BuiltinDiarizer

        return BuiltinDiarizer()
    from . import pyannote

    if choice == "pyannote":
        return pyannote.PyannoteDiarizer(pipeline, hf_token=hf_token, device=device)
    why = pyannote.unavailable_reason(pipeline, hf_token)
    if why is None:
        try:
            return pyannote.PyannoteDiarizer(pipeline, hf_token=hf_token, device=device)
        except ModelError as e:
            why = str(e)
    log.warning("diarizer: using builtin (offline) because pyannote is unavailable: %s", why)
    from .builtin import BuiltinDiarizer

    return BuiltinDiarizer()
