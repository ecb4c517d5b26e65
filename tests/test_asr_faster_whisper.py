"""The faster-whisper engine and how engines are chosen: the bundled tiny.en, models found in a Hugging Face
cache folder or named by path, never a download, and options that only some engines take."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from majlis.asr import ENGINES, REGISTRY, get_asr, plan_asr
from majlis.asr import faster_whisper as fw
from majlis.audio import SAMPLE_RATE, decode
from majlis.errors import ModelError, UsageError


def hf_cache(root, repo: str) -> None:
    """The bundled model laid out as huggingface_hub caches a download of `repo` (links, not copies)."""
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    for f in fw.bundled_model_dir().iterdir():
        os.symlink(f, snapshot / f.name)


def test_the_cli_offers_every_registered_engine():
    assert ENGINES == ("auto", *REGISTRY) and "faster-whisper" in REGISTRY


def test_bundled_tiny_en_transcribes_with_timed_words(speech_wav):
    engine = get_asr("faster-whisper", threads=1)
    assert engine.name == "faster-whisper:tiny.en"
    samples = decode(speech_wav)
    calls, handed = [], []
    result = engine.transcribe(samples, hook=lambda *a: calls.append(a), on_words=handed.append)
    duration = len(samples) / SAMPLE_RATE
    words = [w for s in result.segments for w in s.words]
    assert len(words) > 15 and result.language == "en"
    # The words were handed over as they were decoded, group by group in time order: the same words.
    assert len(handed) > 1 and [(w.word.strip(), round(float(w.start), 2)) for g in handed for w in g] == [
        (w.word.strip(), round(float(w.start), 2)) for w in words]
    assert all(0 <= w.start <= w.end <= duration and 0 <= w.probability <= 1 for w in words)
    text = " ".join(s.text for s in result.segments).lower()
    assert "zabul" in text or "claim" in text
    assert calls[0] == ("asr", 0.0, duration) and calls[-1] == ("asr", duration, duration)


def test_silence_gives_no_text():
    assert get_asr("faster-whisper").transcribe(np.zeros(5 * SAMPLE_RATE, np.float32)).segments == ()


def test_a_model_in_the_hugging_face_cache_is_used_by_name(tmp_path):
    hf_cache(tmp_path, "Systran/faster-whisper-tiny.en")
    r = fw.resolve("tiny.en", str(tmp_path), "cpu")
    assert r.path is not None and str(tmp_path) in str(r.path) and not r.bundled
    assert get_asr("auto", model="tiny.en", model_dir=str(tmp_path), device="cpu").name == "faster-whisper:tiny.en"


def test_a_model_not_cached_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(ModelError) as e:
        get_asr("faster-whisper", model="small", model_dir=str(tmp_path))
    assert "small" in str(e.value) and str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_ct2_folder_by_path(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    for f in fw.bundled_model_dir().iterdir():
        os.symlink(f, folder / f.name)
    assert plan_asr("auto", model=str(folder)) == "faster-whisper"
    assert get_asr("auto", model=str(folder)).name == "faster-whisper:my-model"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no model.bin"):
        get_asr("faster-whisper", model=str(empty))


def test_unknown_name_and_language(tmp_path):
    with pytest.raises(ModelError, match="huge-v9"):
        get_asr("faster-whisper", model="huge-v9", model_dir=str(tmp_path))
    with pytest.raises(UsageError, match="unknown language code 'xx'"):
        get_asr("faster-whisper", language="xx")


def test_english_only_model_says_how_to_get_a_multilingual_one():
    with pytest.raises(UsageError) as e:
        get_asr("faster-whisper", language="uz")
    assert "English-only" in str(e.value) and "multilingual" in str(e.value)


def test_options_an_engine_does_not_take_are_refused_not_ignored():
    with pytest.raises(UsageError, match="sphinx engine does not take --beam-size"):
        plan_asr("sphinx", beam_size=3)
    with pytest.raises(UsageError, match="whisper engine does not take --compute-type"):
        plan_asr("whisper", compute_type="int8")


def test_auto_passes_over_engines_that_cannot_take_the_options_given(tmp_path, caplog):
    # A cached openai-whisper model would come first, but it has no compute type.
    with caplog.at_level(logging.WARNING, logger="majlis"):
        assert plan_asr("auto", compute_type="int8", model_dir=str(tmp_path)) == "faster-whisper"
    assert not caplog.records


def test_hotwords_and_speaker_names_reach_the_decoder():
    engine = get_asr("faster-whisper", hotwords=("Zabul",), speaker_names=("Mudaqiq", "Zabul"), prompt="A panel.")
    assert engine._options["hotwords"] == "Zabul, Mudaqiq" and engine._options["initial_prompt"] == "A panel."
