"""Cutting recordings at pauses: exact signals with known pauses, built in numpy."""

from __future__ import annotations

import numpy as np

from majlis.asr import chunks

SR = chunks.SAMPLE_RATE


def burst(seconds: float, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    # Noise modulated at a syllable rate, like speech: loud, with short dips but no 0.3 s pause.
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (amp * rng.standard_normal(len(t)) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def quiet(seconds: float, amp: float = 1e-3, seed: int = 1) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_silence_and_empty_input():
    assert chunks.is_silent(np.zeros(SR * 3, dtype=np.float32))
    assert chunks.is_silent(np.zeros(0, dtype=np.float32))
    assert chunks.chunk(np.zeros(SR * 3, dtype=np.float32)) == []
    assert not chunks.is_silent(burst(1.0))


def test_steady_room_noise_has_no_speech():
    assert chunks.chunk(quiet(5.0, amp=3e-3)) == []


def test_regions_follow_the_pauses():
    x = np.concatenate([quiet(1.0), burst(2.0), quiet(1.0), burst(3.0), quiet(0.1), burst(1.0), quiet(1.0)])
    regions = [(a / 100, b / 100) for a, b in chunks.speech_regions(x, pad=0.0)]
    # A 0.1 s dip is inside speech; 1 s pauses separate it.
    assert len(regions) == 2
    (a1, b1), (a2, b2) = regions
    assert abs(a1 - 1.0) < 0.05 and abs(b1 - 3.0) < 0.05
    assert abs(a2 - 4.0) < 0.05 and abs(b2 - 8.1) < 0.05


def test_chunks_group_regions_up_to_target_and_skip_long_silence():
    parts = [quiet(0.5)]
    for i in range(6):
        parts += [burst(4.0, seed=i), quiet(0.6)]
    parts += [quiet(20.0)]
    x = np.concatenate(parts)
    got = chunks.chunk(x, target=10.0, max_len=30.0)
    assert len(got) == 3
    for c in got:
        assert c.end_s - c.start_s <= 10.0 + 1e-6
    assert got[0].start_s < 0.5 and got[-1].end_s < len(x) / SR - 19.0  # the trailing silence is left out
    for a, b in zip(got, got[1:]):
        assert a.end <= b.start


def test_speech_without_pauses_is_cut_at_its_quietest_point():
    dip = np.concatenate([burst(25.0), burst(0.2, amp=0.03), burst(25.0, seed=3)])
    got = chunks.chunk(dip, target=20.0, max_len=30.0)
    assert len(got) == 2
    assert abs(got[0].end_s - 25.1) < 0.2  # at the dip, not at the 30 s cap
    assert got[0].end == got[1].start and got[-1].end == len(dip)
    endless = burst(70.0)
    pieces = chunks.chunk(endless, target=20.0, max_len=30.0)
    assert all(c.end_s - c.start_s <= 30.0 + 1e-6 for c in pieces)
    assert pieces[0].start == 0 and pieces[-1].end == len(endless)
    assert sum(c.end - c.start for c in pieces) == len(endless)


def test_a_long_pause_always_ends_a_chunk():
    x = np.concatenate([burst(2.0), quiet(chunks.MAX_INNER_PAUSE + 1.0), burst(2.0, seed=4), quiet(0.5)])
    got = chunks.chunk(x, target=20.0)
    assert len(got) == 2
    assert got[0].end_s < 2.5 and got[1].start_s > 2.0 + chunks.MAX_INNER_PAUSE
