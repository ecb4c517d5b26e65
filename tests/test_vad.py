"""Speech detection with Silero VAD: real voices found however quiet, loud noise left out, probabilities kept."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from majlis import voice as B
from majlis.diarize import vad

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import panels  # noqa: E402

SR = 16000
pytestmark = pytest.mark.skipif(not vad.available(), reason="faster-whisper (Silero VAD) not installed")


def test_mask_hysteresis_padding_and_small_pieces():
    prob = np.zeros(300, np.float32)
    prob[50:60] = 0.6  # reaches ON
    prob[40:50] = prob[60:75] = 0.4  # above OFF around it: part of the same region
    prob[150:153] = 0.9  # 30 ms: too short even padded
    prob[200:230] = 0.45  # never reaches ON
    mask = vad.speech_mask(prob, fill=12, min_region=10)
    assert np.flatnonzero(mask).tolist() == list(range(40 - vad.PAD, 75 + vad.PAD))


def test_real_voice_found_and_noise_left_out():
    # A real phone call; then a quiet reply (-24 dB) and a loud burst of hum and hiss after it.
    wav, turns, _ = panels.pyannote_sample()
    from majlis.audio import decode

    call = decode(wav)
    quiet = np.array(call[int(7.55 * SR) : int(8.35 * SR)]) * 10 ** (-24 / 20)  # Sheila's "Hello?"
    t = np.arange(2 * SR) / SR
    hum = (0.3 * np.sin(2 * np.pi * 120 * t) + 0.05 * np.random.default_rng(0).standard_normal(len(t)))
    x = np.concatenate([call, np.zeros(SR), quiet, np.zeros(SR), hum]).astype(np.float32)
    prob = vad.speech_probability(x)
    assert prob is not None and len(prob) == len(x) // 160 and prob.dtype == np.float32
    mask = vad.speech_mask(prob)
    inside = np.zeros(len(mask), bool)
    for _, a, b in turns:
        inside[int(a * 100) : int(b * 100)] = True
    call_frames = len(call) // 160
    recall = (mask[:call_frames] & inside[:call_frames]).sum() / inside.sum()
    precision = (mask[:call_frames] & inside[:call_frames]).sum() / mask[:call_frames].sum()
    assert recall > 0.9 and precision > 0.9, (recall, precision)
    q0 = call_frames + 100
    assert mask[q0 + 8 : q0 + 60].mean() > 0.5, "the quiet reply (7.634-8.155 s in sample.stm) is speech"
    h0 = q0 + 80 + 100
    assert mask[h0:].mean() < 0.05, "hum and hiss are not speech"
    # The energy detector, for comparison, takes the loud hum for speech.
    assert vad.detect_speech(x)[h0:].mean() > 0.5


def test_analysis_keeps_probabilities():
    x = panels.load_clip(panels.reader_clips(panels.WOMEN[0])[0]) if panels.reader_clips(panels.WOMEN[0]) else None
    if x is None:
        pytest.skip("shared LibriSpeech voices absent")
    found = B.analyse(np.array(x), remember=False)
    assert found.prob is not None and len(found.prob) == len(found.speech)
    assert found.prob[found.speech].mean() > 0.7 and found.speech.mean() > 0.6
