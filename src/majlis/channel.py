"""A voice sample matched to an episode's channel before it is compared with the episode's voices (speakers.py):
where the episode carries nothing (a phone line's 300-3,400 Hz band, say), the sample is attenuated to match."""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE

# Matching the samples to the episode's channel (`channel_gain`). Where the episode's long-term speech
# spectrum is at least CHANNEL_GAP_DB below the sample's (relative to the bands both carry), the sample is
# attenuated there to the episode's level; it is never boosted. Measured on the LibriSpeech panels
# (bench/speakers.py): studio samples against 32 kbps phone episodes are 30-60 dB apart outside 300-3,400 Hz,
# same-channel pairs within 20 dB but for a band or two; matched samples named every reader on the phone line where
# full-spectrum ones left one Unknown, and gaps under 16 dB named a voice nobody enrolled.
CHANNEL_GAP_DB = 20.0
CHANNEL_FFT = 512  # 32 ms frames at 16 kHz: bands of 31.25 Hz
CHANNEL_SMOOTH = 5  # bands averaged (in dB) either side: the spectra's shapes, not their harmonics
CHANNEL_REF_QUANTILE = 0.9  # the level offset between the two: the bands the episode carries best
CHANNEL_MIN_BANDS = 4  # a stretch of fewer bands (125 Hz) past the gap is left alone
CHANNEL_FLOOR_DB = -100.0  # the most a band is attenuated


def speech_spectrum(samples: np.ndarray, spans=None, *, max_frames: int = 20000) -> np.ndarray | None:
    """Long-term average speech spectrum, in dB relative to its total power, per CHANNEL_FFT band
    (CHANNEL_FFT // 2 + 1 of them, 0 .. 8 kHz): the power mean of the louder half of the 32 ms frames inside
    `spans` ([(start, end)] seconds; None: the whole recording), at most `max_frames` of them evenly spread.
    None when there are too few frames to say."""
    x = np.asarray(samples, np.float32).reshape(-1)
    n, hop = CHANNEL_FFT, CHANNEL_FFT // 2
    last = len(x) - n
    if last < 0:
        return None
    if spans is None:
        starts = np.arange(0, last + 1, hop)
    else:
        parts = [np.arange(int(np.ceil(a * SAMPLE_RATE / hop)) * hop, min(int(b * SAMPLE_RATE) - n, last) + 1, hop)
                 for a, b in spans]
        starts = np.unique(np.concatenate(parts)) if parts else np.zeros(0, int)
    if len(starts) > max_frames:
        starts = starts[np.unique(np.linspace(0, len(starts) - 1, max_frames).round().astype(int))]
    if len(starts) < 20:
        return None
    window = np.hanning(n).astype(np.float32)
    power = np.empty((len(starts), n // 2 + 1))
    for i in range(0, len(starts), 4096):
        frames = x[starts[i : i + 4096, None] + np.arange(n)] * window
        power[i : i + len(frames)] = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    keep = energy >= np.median(energy)
    mean = power[keep].mean(axis=0)
    total = float(mean.sum())
    if total <= 0:
        return None
    return 10 * np.log10(mean / total + 1e-12)


def _smooth(db: np.ndarray) -> np.ndarray:
    k = CHANNEL_SMOOTH
    padded = np.pad(db, k, mode="edge")
    return np.convolve(padded, np.ones(2 * k + 1) / (2 * k + 1), mode="valid")


def channel_gain(episode: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Per band, the dB (<= 0) that brings a sample recorded on another channel to the episode's: where the
    episode is CHANNEL_GAP_DB or more weaker than the sample, relative to the bands both carry (a phone
    line's 300-3,400 Hz), the sample is attenuated down to it; elsewhere 0. Never a boost: what a sample
    lacks cannot be given back."""
    e, s = _smooth(np.asarray(episode, float)), _smooth(np.asarray(sample, float))
    diff = e - s
    carried = s >= s.max() - 40.0  # bands the sample itself carries: a clip cut at 7 kHz says nothing above
    ref = float(np.quantile(diff[carried], CHANNEL_REF_QUANTILE))
    rel = diff - ref
    cut = rel <= -CHANNEL_GAP_DB
    # A channel's limit spans a stretch of bands; one band dipping past the gap is the voices, not the line.
    edges = np.flatnonzero(np.diff(np.concatenate([[0], cut.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a < CHANNEL_MIN_BANDS:
            cut[a:b] = False
    return np.where(cut, np.maximum(rel, CHANNEL_FLOOR_DB), 0.0)


def apply_gain(samples: np.ndarray, gain_db: np.ndarray) -> np.ndarray:
    """`samples` through a zero-phase filter of `gain_db` per CHANNEL_FFT band (linear in between)."""
    x = np.asarray(samples, np.float64).reshape(-1)
    if not len(x):
        return x.astype(np.float32)
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    bands = np.fft.rfftfreq(CHANNEL_FFT, 1 / SAMPLE_RATE)
    spectrum *= 10 ** (np.interp(freqs, bands, gain_db) / 20)
    return np.fft.irfft(spectrum, len(x)).astype(np.float32)
