"""resemblyzer's voice encoder (a 3-layer LSTM over 40 mel bands, then a linear layer) run with numpy alone.

The weights are resemblyzer's pretrained ones (Apache-2.0, Corentin Jemine / Resemble AI), exported to
assets/voice_encoder.npz by tools/export_voice_encoder.py, so speaker work needs neither torch nor a
download. The results equal resemblyzer's own (torch) forward pass to within float32 rounding
(tests/test_encoder.py compares them wherever torch is installed).
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

import numpy as np

from .audio import SAMPLE_RATE
from .errors import ModelError

HOP = 160  # 10 ms mel frames
N_FFT = 400  # 25 ms windows
N_MELS = 40
HIDDEN = 256
LAYERS = 3
WEIGHTS = "voice_encoder.npz"
WEIGHTS_SHA256 = "52b41435526940a0ef436afec5cf772da6f42c4a171b018b631a133950d08edb"


@functools.lru_cache(maxsize=1)
def weights() -> dict[str, np.ndarray]:
    """The encoder's arrays, checked against their pinned hash: a damaged install fails here in one line
    instead of giving every voice a wrong embedding."""
    try:
        blob = resources.files("majlis").joinpath("assets", WEIGHTS).read_bytes()
    except OSError as e:
        raise ModelError(f"the voice encoder's weights are missing from this install ({e})") from None
    if hashlib.sha256(blob).hexdigest() != WEIGHTS_SHA256:
        raise ModelError(f"the voice encoder's weights ({WEIGHTS}) are damaged: reinstall majlis")
    import io

    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1000.0) / 1000.0) / (np.log(6.4) / 27.0), hz * 3 / 200)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), mel * 200 / 3)


@functools.lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=40), the filters resemblyzer was trained with. Our own
    copy because importing librosa costs 2 s and 100 MB (numba) for one 40 x 201 matrix."""
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    width = np.diff(edges)
    w = np.maximum(0, np.minimum(-ramps[:-2] / width[:-1, None], ramps[2:] / width[1:, None]))
    w *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney norm: each filter has unit area
    return np.ascontiguousarray(w.T, dtype=np.float32)  # (201, 40): spectra @ basis


@functools.lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic, as torch's


def mel_frames(windows: np.ndarray) -> np.ndarray:
    """(n, 400) float32 sample windows -> their (power, not log) mel spectra (n, 40)."""
    spec = np.fft.rfft(windows * _hann(), axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return power @ mel_basis()


def _sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    # Through tanh rather than 1 / (1 + exp(-x)): exp overflows on loud input, and its subnormal results
    # slowed whole batches tenfold.
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _lstm_layer(x: np.ndarray, lengths: np.ndarray, w_ih, w_hh, b) -> tuple[np.ndarray, np.ndarray]:
    """One layer over a padded batch (B, T, D) sorted by length, longest first: every step's output
    (B, T, H; zeros past each sequence's end) and each sequence's hidden state at its own last step (B, H),
    as torch's LSTM gives for a packed batch. Gate order i, f, g, o (torch's). A step runs only the sequences
    still going: past its end a state would decay towards subnormal floats, which slow the CPU tenfold."""
    batch, steps, _ = x.shape
    pre = (x.reshape(batch * steps, -1) @ w_ih.T).reshape(batch, steps, 4 * HIDDEN)
    pre += b
    h = np.zeros((batch, HIDDEN), np.float32)
    c = np.zeros((batch, HIDDEN), np.float32)
    outputs = np.zeros((batch, steps, HIDDEN), np.float32)
    gates = np.empty((batch, 4 * HIDDEN), np.float32)
    act = np.empty_like(gates)
    w_hh_t = np.ascontiguousarray(w_hh.T)
    going = np.searchsorted(-lengths, -np.arange(1, steps + 1), side="right")  # sequences longer than t
    for t in range(steps):
        k = int(going[t])
        g4, a4 = gates[:k], act[:k]
        np.matmul(h[:k], w_hh_t, out=g4)
        g4 += pre[:k, t]
        _sigmoid(g4, a4)  # i, f, o are read from here; g is the tanh below
        cell = c[:k]
        cell *= a4[:, HIDDEN : 2 * HIDDEN]
        cell += a4[:, :HIDDEN] * np.tanh(g4[:, 2 * HIDDEN : 3 * HIDDEN])
        h[:k] = a4[:, 3 * HIDDEN :] * np.tanh(cell)
        outputs[:k, t] = h[:k]
    return outputs, h


def embed(mels: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Unit voice embeddings (B, 256) of a padded batch of mel spectra (B, T, 40); sequence i is
    mels[i, :lengths[i]] (padding never reaches its embedding, as with torch's packed sequences)."""
    mels = np.asarray(mels, np.float32)
    batch, steps, _ = mels.shape
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    if batch == 0:
        return np.zeros((0, HIDDEN), np.float32)
    w = weights()
    order = np.argsort(-lengths, kind="stable")
    x, lengths = mels[order], lengths[order]
    for layer in range(LAYERS):
        bias = w[f"lstm_bias_ih_l{layer}"] + w[f"lstm_bias_hh_l{layer}"]
        x, last = _lstm_layer(x, lengths, w[f"lstm_weight_ih_l{layer}"], w[f"lstm_weight_hh_l{layer}"], bias)
    raw = np.maximum(last @ w["linear_weight"].T + w["linear_bias"], 0.0)
    unit = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-9)
    out = np.empty_like(unit, dtype=np.float32)
    out[order] = unit
    return out
