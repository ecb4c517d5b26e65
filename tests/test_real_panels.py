"""The yardstick for who-said-it (bench/panels.py): real-voice panels carry exact truth, the telephone
variant is really band-limited, and the scores say what they claim on cases worked out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import panels  # noqa: E402

SR = 16000
needs_voices = pytest.mark.skipif(not panels.reader_clips(panels.WOMEN[0]), reason="shared LibriSpeech voices absent")


def test_scores_on_cases_worked_by_hand():
    ref = [("A", 0.0, 10.0), ("B", 10.0, 20.0)]
    assert panels.der(ref, [("x", 0.0, 10.0), ("y", 10.0, 20.0)]) == 0.0
    # One second of B given to A's label, outside any collar: 1 s confused of 20.
    assert panels.der(ref, [("x", 0.0, 12.0), ("y", 12.0, 20.0)], collar=0.0) == pytest.approx(0.1)
    # pyannote's collar is the whole width: 0.125 s either side of each reference boundary is not scored.
    assert panels.der(ref, [("x", 0.0, 12.0), ("y", 12.0, 20.0)], collar=0.25) == pytest.approx(1.875 / 19.5)
    assert panels.mapping(ref, [("y", 0.0, 9.0), ("x", 9.0, 20.0)]) == {"y": "A", "x": "B"}
    words = [("A", 1.0, 1.3), ("A", 9.5, 9.8), ("B", 10.2, 10.5), ("B", 15.0, 15.3)]
    assert panels.words_right(words, ["y", "x", "x", "x"], reference=ref) == 0.75
    assert panels.words_right(words, ["A", "A", "B", "A"], named=True) == 0.75
    # Two voices at once for 1 s, and the hypothesis keeps two turns for half of it.
    ref2 = [("A", 0.0, 5.0), ("B", 4.0, 8.0)]
    assert panels.overlap_coverage(ref2, [("x", 0.0, 4.5), ("y", 4.0, 8.0)]) == pytest.approx(0.5)
    assert panels.overlap_coverage(ref, ref) is None


def test_sample_reference_words_lie_in_their_utterances():
    wav, turns, words = panels.pyannote_sample()
    assert wav.exists() and {t[0] for t in turns} == {w[0] for w in words} == {"Diane", "Sheila"}
    assert len(words) == 81 and words[-1][3] == "now." and words[-1][2] == pytest.approx(29.987)
    assert all(w[1] < w[2] for w in words)
    assert [w[3] for w in words[:3]] == ["Hello?", "Hello?", "Oh,"]


@needs_voices
def test_panel_truth_is_exact():
    p = panels.make_panel(5, panels.WOMEN[:3], seconds=40)
    assert set(p.speakers) == set(panels.WOMEN[:3]) and 35 < p.duration < 60
    durations = [b - a for _, a, b in p.turns]
    assert sum(0.9 <= d <= 3.2 for d in durations) >= len(durations) / 3, "mostly short turns"
    assert panels.overlap_coverage(p.turns, p.turns) == 1.0, "the panel has overlaps"
    # Outside every turn there is only the -60 dB floor; inside, speech.
    inside = np.zeros(len(p.samples), bool)
    for _, a, b in p.turns:
        inside[int(a * SR) : int(b * SR)] = True
    assert np.sqrt(np.mean(p.samples[~inside] ** 2)) < 0.003
    assert np.sqrt(np.mean(p.samples[inside] ** 2)) > 0.02
    # Words lie inside their own speaker's turn and in nobody else's.
    for who, a, b in p.words:
        assert any(s == who and t0 <= a and b <= t1 + 1e-6 for s, t0, t1 in p.turns)
        assert not any(s != who and t0 < b and a < t1 for s, t0, t1 in p.turns)
    # The voice samples are utterances the panel never uses.
    for who, clips in p.enrollment.items():
        assert len(clips) == panels.SAMPLE_UTTERANCES and all(len(c) > SR for c in clips)
    again = panels.make_panel(5, panels.WOMEN[:3], seconds=40)
    assert np.array_equal(again.samples, p.samples) and again.turns == p.turns


@needs_voices
def test_telephone_variant_is_band_limited():
    p = panels.make_panel(1, panels.WOMEN[:2], seconds=15)
    phone = panels.telephone(p.samples)
    assert abs(len(phone) - len(p.samples)) < 0.1 * SR
    spec = np.abs(np.fft.rfft(phone[: 10 * SR])) ** 2
    hz = np.fft.rfftfreq(10 * SR, 1 / SR)
    band = spec[(hz > 400) & (hz < 3300)].sum()
    assert spec[hz > 4000].sum() < 1e-4 * band and spec[hz < 150].sum() < 0.05 * band
