"""Speaker diarizers behind one small interface, chosen by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..types import ProgressHook, Turn


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
