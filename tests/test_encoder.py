"""The numpy voice encoder against resemblyzer's own torch model: same spectra, same embeddings, on real
speech (pyannote's sample call), for windows of unequal length as the diarizer batches them."""

from __future__ import annotations

import numpy as np
import pytest

from majlis import encoder
from majlis.audio import SAMPLE_RATE
from majlis.errors import ModelError


@pytest.fixture(scope="module")
def call():
    import soundfile as sf
    from importlib import resources

    path = resources.files("pyannote.audio") / "sample" / "sample.wav"
    samples, rate = sf.read(str(path), dtype="float32")
    assert rate == SAMPLE_RATE
    return samples


def windows_at(samples: np.ndarray, frames: np.ndarray, gain: float) -> np.ndarray:
    idx = frames[:, None] * encoder.HOP + np.arange(-encoder.N_FFT // 2, encoder.N_FFT // 2)
    outside = (idx < 0) | (idx >= len(samples))
    return np.where(outside, 0, samples[np.clip(idx, 0, len(samples) - 1)] * np.float32(gain)).astype(np.float32)


def test_weights_are_resemblyzers():
    torch = pytest.importorskip("torch")
    resemblyzer = pytest.importorskip("resemblyzer")
    from pathlib import Path

    state = torch.load(Path(resemblyzer.__file__).parent / "pretrained.pt", map_location="cpu")["model_state"]
    ours = encoder.weights()
    assert sorted(ours) == sorted(k.replace(".", "_") for k in state if k.startswith(("lstm.", "linear.")))
    for key, value in ours.items():
        assert np.array_equal(value, state[key.replace("_", ".", 1)].numpy()), key


def test_embeddings_equal_resemblyzers_for_windows_of_unequal_length(call):
    torch = pytest.importorskip("torch")
    resemblyzer = pytest.importorskip("resemblyzer")
    from torch.nn.utils.rnn import pack_padded_sequence

    rng = np.random.default_rng(7)
    frames = np.arange(len(call) // encoder.HOP)
    mels = encoder.mel_frames(windows_at(call, frames, gain=3.0))
    lengths = rng.integers(10, 121, 48)
    lengths[:2] = 120
    starts = rng.integers(0, len(frames) - 121, len(lengths))
    batch = np.zeros((len(lengths), 120, encoder.N_MELS), np.float32)
    for j, (a, m) in enumerate(zip(starts, lengths)):
        batch[j, :m] = mels[a : a + m]
    model = resemblyzer.VoiceEncoder("cpu", verbose=False).eval()
    with torch.inference_mode():
        packed = pack_padded_sequence(torch.from_numpy(batch), torch.from_numpy(lengths), batch_first=True,
                                      enforce_sorted=False)
        _, (hidden, _) = model.lstm(packed)
        raw = model.relu(model.linear(hidden[-1]))
        theirs = (raw / raw.norm(dim=1, keepdim=True)).numpy()
        whole = model(torch.from_numpy(batch[:1])).numpy()  # resemblyzer's own forward, one full window
    ours = encoder.embed(batch, lengths)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.abs(ours[:1] - whole).max() < 1e-4
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_mel_spectra_equal_librosas_filters_on_torchs_stft(call):
    torch = pytest.importorskip("torch")
    frames = np.arange(0, len(call) // encoder.HOP, 7)
    win = windows_at(call, frames, gain=2.0)
    spec = torch.fft.rfft(torch.from_numpy(win) * torch.hann_window(encoder.N_FFT))
    theirs = ((spec.abs() ** 2).numpy() @ encoder.mel_basis())
    ours = encoder.mel_frames(win)
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_damaged_weights_are_one_clear_error(monkeypatch):
    encoder.weights.cache_clear()
    monkeypatch.setattr(encoder, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="damaged"):
        encoder.weights()
    encoder.weights.cache_clear()


def test_an_empty_batch_has_no_embeddings():
    assert encoder.embed(np.zeros((0, 5, encoder.N_MELS), np.float32)).shape == (0, 256)
