"""Speech recognisers behind one small interface, chosen by name.

The pipeline only sees `AsrEngine`; engine modules import their heavy libraries lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..types import ProgressHook, Segment


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
