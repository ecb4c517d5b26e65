"""The whisper engine through get_asr, on a tiny random-weight checkpoint built here (real whisper code:
checkpoint loading, mel, decoding, word timestamps; the text is noise, so only structure is checked),
and its answers when weights are missing: a one-line ModelError, or "auto" falling back to sphinx."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
whisper = pytest.importorskip("whisper")

from majlis.asr import AsrResult, get_asr  # noqa: E402
from majlis.audio import SAMPLE_RATE, decode  # noqa: E402
from majlis.errors import ModelError, UsageError  # noqa: E402
from majlis.types import Segment, Word  # noqa: E402

# Random weights never stop on their own; 16 tokens a window and no temperature retries keep this fast.
FAST = {"sample_len": 16, "temperature": 0.0}
# A closed local port: the real download code fails at once, the way it does without internet.
UNREACHABLE = "http://127.0.0.1:9/{}/{}"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from whisper.model import ModelDimensions, Whisper

    torch.set_num_threads(1)
    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
        n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=1,
    )
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    model = Whisper(dims)
    # Whisper leaves its text positional embedding as torch.empty (the real one comes from the checkpoint):
    # uninitialised memory made the random model emit NaNs on some runs, so every weight is drawn here, wide
    # enough (std 0.5) that the decoder emits tokens instead of ending at once.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture
def offline(monkeypatch):
    """Every official model URL points at a closed port."""
    for name, url in list(whisper._MODELS.items()):
        sha, file = url.split("/")[-2:]
        monkeypatch.setitem(whisper._MODELS, name, UNREACHABLE.format(sha, file))


def test_checkpoint_transcribes_with_valid_structure(checkpoint, speech_wav):
    engine = get_asr("whisper", model=str(checkpoint), language="en", device="cpu", decode_options=FAST)
    assert engine.name == "whisper:tiny-random"
    samples = decode(speech_wav)
    duration = len(samples) / SAMPLE_RATE
    calls = []
    result = engine.transcribe(samples, hook=lambda *a: calls.append(a))

    assert isinstance(result, AsrResult) and result.language == "en"
    assert result.segments, "the random model emits tokens; they must come back as timed words"
    last = 0.0
    for i, seg in enumerate(result.segments):
        assert isinstance(seg, Segment) and seg.id == i and seg.speaker == ""
        assert seg.words and all(isinstance(w, Word) for w in seg.words)
        assert seg.text == seg.text.strip() and seg.text
        assert 0.0 <= seg.start <= seg.end <= duration
        for w in seg.words:
            assert w.word and w.word == w.word.strip()
            assert seg.start <= w.start <= w.end <= seg.end
            assert last <= w.start
            last = w.start
            assert w.probability is None or 0.0 <= w.probability <= 1.0

    assert calls[0] == ("asr", 0.0, duration) and calls[-1] == ("asr", duration, duration)
    done = [c[1] for c in calls]
    assert done == sorted(done) and all(c[0] == "asr" and c[2] == duration for c in calls)


def test_silence_gives_no_text(checkpoint):
    engine = get_asr("whisper", model=str(checkpoint), language="en", device="cpu", decode_options=FAST)
    result = engine.transcribe(np.zeros(4 * SAMPLE_RATE, dtype=np.float32))
    assert result.segments == ()


def test_auto_uses_a_checkpoint_path(checkpoint):
    assert get_asr("auto", model=str(checkpoint), device="cpu").name == "whisper:tiny-random"


def _one_line_naming_the_ways_out(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    assert "--model PATH" in msg and "--asr sphinx" in msg
    return msg


def test_missing_weights_that_cannot_be_fetched(tmp_path, offline):
    empty = tmp_path / "models"
    with pytest.raises(ModelError) as e:
        get_asr("whisper", model="tiny", model_dir=str(empty), device="cpu")
    msg = _one_line_naming_the_ways_out(e)
    assert "tiny" in msg and "cannot be downloaded" in msg and str(empty) in msg
    assert not empty.exists() or not any(empty.iterdir())  # no partial download left behind


def test_auto_without_whisper_weights_runs_the_bundled_tiny_en(tmp_path, caplog, offline):
    with caplog.at_level(logging.WARNING, logger="majlis"):
        engine = get_asr("auto", model_dir=str(tmp_path), device="cpu")
    assert engine.name == "faster-whisper:tiny.en"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert os.listdir(tmp_path) == []


def test_auto_falls_back_to_sphinx_without_downloading(tmp_path, caplog, offline, monkeypatch, no_bundled):
    import majlis.asr.whisper as engine_module

    tries = []
    for owner, attr in ((engine_module, "_fetch"), (whisper, "_download")):
        real = getattr(owner, attr)
        monkeypatch.setattr(owner, attr, lambda *a, _real=real, **k: tries.append(a) or _real(*a, **k))
    with caplog.at_level(logging.WARNING, logger="majlis"):
        engine = get_asr("auto", model_dir=str(tmp_path), device="cpu")
    assert engine.name == "sphinx:en-us"
    assert tries == []
    warnings = [r for r in caplog.records if r.name == "majlis" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "base" in text and "sphinx" in text and "--model PATH" in text and "\n" not in text
    assert os.listdir(tmp_path) == []


def test_auto_falls_back_when_cached_weights_are_damaged(tmp_path, caplog, offline, checkpoint):
    # A file with the right name but not the official bytes: whisper rejects its checksum and would refetch.
    (tmp_path / "tiny.pt").write_bytes(checkpoint.read_bytes())
    with caplog.at_level(logging.WARNING, logger="majlis"), pytest.warns(UserWarning, match="SHA256"):
        engine = get_asr("auto", model="tiny", model_dir=str(tmp_path), device="cpu")
    assert engine.name == "sphinx:en-us"
    assert any("cannot be loaded" in r.getMessage() for r in caplog.records)


def test_auto_cannot_fall_back_for_other_languages(tmp_path, offline):
    # Only the English-only tiny.en is here: the error says so and how to get a multilingual model.
    with pytest.raises(ModelError) as e:
        get_asr("auto", model_dir=str(tmp_path), language="ar", device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and "sphinx cannot stand in" in msg and "tiny.en is English-only" in msg
    assert "multilingual" in msg and "--model DIR" in msg


def test_unknown_model_name(tmp_path):
    with pytest.raises(ModelError) as e:
        get_asr("whisper", model="huge-v9", model_dir=str(tmp_path), device="cpu")
    msg = _one_line_naming_the_ways_out(e)
    assert "huge-v9" in msg and "turbo" in msg


def test_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("these are not weights\n")
    with pytest.raises(ModelError) as e:
        get_asr("whisper", model=str(bad), device="cpu")
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    # "auto" must not hide a broken checkpoint the user named behind a silent engine switch.
    with pytest.raises(ModelError):
        get_asr("auto", model=str(bad), device="cpu")


def test_bad_language_and_task(checkpoint):
    with pytest.raises(UsageError, match="klingon"):
        get_asr("whisper", model=str(checkpoint), language="klingon", device="cpu")
    with pytest.raises(UsageError, match="task"):
        get_asr("whisper", model=str(checkpoint), task="summarise", device="cpu")
    engine = get_asr("whisper", model=str(checkpoint), language="Arabic", task="translate", device="cpu")
    assert engine.language == "ar" and engine.task == "translate"


@pytest.mark.parametrize("asr", ["whisper", "auto"])
def test_whisper_beside_a_diarizer_stays_in_process(checkpoint, asr):
    # Only an engine that holds the GIL gets a child process; whisper (torch releases the GIL) runs in a thread.
    from majlis.pipeline import Engines, Options

    engines = Engines.load(Options(asr=asr, model=str(checkpoint), diarizer="builtin", device="cpu"))
    try:
        assert engines.describe() == {"asr": "whisper:tiny-random", "diarizer": engines.diarizer.name}
        assert type(engines.asr).__name__ == "WhisperAsr"
    finally:
        engines.close()
