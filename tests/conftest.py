"""Shared fixtures: real recordings made on the spot with flite, sox and ffmpeg (nothing generated is committed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

FIRST = "Welcome to our majlis. Today we talk about the Islamic Movement of Uzbekistan."
SECOND = "The fighters were stationed in the same area, near the border with Afghanistan."
PAUSE = 1.5  # seconds of digital silence between the two sentences


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """About 11 s of English, 16 kHz mono WAV: FIRST (voice slt), PAUSE s of silence, SECOND (voice rms)."""
    d = tmp_path_factory.mktemp("speech")
    a, b, gap, out = d / "a.wav", d / "b.wav", d / "gap.wav", d / "speech.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", FIRST, "-o", str(a)], check=True)
    subprocess.run(["flite", "-voice", "rms", "-t", SECOND, "-o", str(b)], check=True)
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(gap), "trim", "0", str(PAUSE)], check=True)
    subprocess.run(["sox", str(a), str(gap), str(b), "-r", "16000", "-c", "1", str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def speech_pause(speech_wav) -> tuple[float, float]:
    """Where the silence between the two sentences lies, in seconds."""
    first = float(subprocess.run(["soxi", "-D", str(speech_wav.parent / "a.wav")], capture_output=True,
                                 text=True, check=True).stdout)
    return first, first + PAUSE
