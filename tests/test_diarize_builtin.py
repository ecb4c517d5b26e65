"""The offline diarizer: its pieces on made-up inputs, then the real encoder on real (synthetic) speech."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from majlis.audio import decode
from majlis.diarize import Diarization, get_diarizer
from majlis import voice as V
from majlis.diarize import builtin as B
from majlis.diarize import vad
from majlis.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def diarizer():
    return get_diarizer("builtin")


@pytest.fixture(scope="module")
def panel():
    samples = decode(ROOT / "audio" / "panel.mp3")
    truth = json.loads((ROOT / "audio" / "panel.truth.json").read_text())
    return samples, truth


# ---------------------------------------------------------------------------------------- pure logic


def test_windows_stay_inside_speech_stretches():
    # Frames 0-299 (3 s), a 0.5 s silence, frames 350-389 (a 0.4 s reply), silence, frames 500-649.
    frames = np.concatenate([np.arange(0, 300), np.arange(350, 390), np.arange(500, 650)])
    starts, lengths = V.window_layout(frames, step=25, split=B.SPLIT)
    ends = starts + lengths
    stretches = [(0, 300), (300, 340), (340, 490)]  # in positions of `frames`
    for s, e in zip(starts, ends):
        assert any(a <= s and e <= b for a, b in stretches), "a window crosses a pause"
    assert (300, 340) in list(zip(starts.tolist(), ends.tolist())), "the short reply has a window of its own"
    assert lengths.max() == V.WIN
    # Without split, windows slide over everything and the last one ends at the end.
    starts, lengths = V.window_layout(frames, step=25)
    assert (lengths == V.WIN).all() and starts[-1] + V.WIN == len(frames)


def test_viterbi_switches_cheaply_at_pauses():
    scores = np.full((200, 2), [0.8, 0.7])
    scores[100:103] = [0.7, 0.8]  # three frames of weak evidence for speaker 1 inside speech
    assert (B.viterbi(scores, np.zeros(200, bool)) == 0).all(), "a 30 ms blip is smoothed away"
    scores[100:] = [0.7, 0.8]
    cheap = np.zeros(200, bool)
    cheap[100] = True
    path = B.viterbi(scores, cheap)
    assert (path[:100] == 0).all() and (path[100:] == 1).all()


def test_turns_bridge_short_silences_and_cut_at_the_dip():
    db = np.full(1000, -20.0)
    db[460] = -45.0  # the quietest frame near a change inside continuous speech
    frames = np.concatenate([np.arange(100, 300), np.arange(330, 600), np.arange(700, 800)])
    path = np.concatenate([np.zeros(200 + 150, int), np.ones(120, int), np.zeros(100, int)])
    spans = B.build_turns(frames, path, db)
    assert spans == [(0, 100, 460), (1, 460, 600), (0, 700, 800)]


def test_turns_are_runs_of_one_label_split_at_long_silences():
    # The rule, frame by frame: a frame joins the current span when its label is the same and the silence
    # since the span's last frame is no longer than BRIDGE frames.
    rng = np.random.default_rng(3)
    frames = np.cumsum(rng.choice([1, 1, 1, 5, B.BRIDGE, B.BRIDGE + 1, 200], 3000))
    # Labels change only across silences, so no change needs cutting at an energy dip.
    group = np.concatenate([[0], np.cumsum(np.diff(frames) > 1)])
    path = rng.integers(0, 3, group[-1] + 1)[group]
    expected = []
    for f, lab in zip(frames.tolist(), path.tolist()):
        if expected and expected[-1][0] == lab and f - expected[-1][2] < B.BRIDGE:
            expected[-1][2] = f + 1
        else:
            expected.append([lab, f, f + 1])
    db = np.full(int(frames[-1]) + 1, -20.0)
    assert B.build_turns(frames, path, db) == [tuple(e) for e in expected]
    assert B.build_turns(frames[:0], path[:0], db) == []


def _voices(rng, centers, counts, spread=0.35):
    out, labels = [], []
    for j, (c, n) in enumerate(zip(centers, counts)):
        x = c + spread * rng.standard_normal((n, c.size)) / np.sqrt(c.size)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        labels += [j] * n
    return np.concatenate(out), np.array(labels)


def test_cluster_counts_speakers_and_respects_bounds():
    rng = np.random.default_rng(1)
    centers = [v / np.linalg.norm(v) for v in np.abs(rng.standard_normal((3, 256)))]
    E, truth = _voices(rng, centers, [120, 80, 60])
    order = rng.permutation(len(E))  # speakers alternate in time
    E, truth = E[order], truth[order]
    starts = np.arange(len(E)) * 200  # windows far apart: none share frames
    ends = starts + V.WIN
    C = B.cluster(E, starts, ends, None, None, None)
    assert len(C) == 3
    assigned = np.argmax(E @ C.T, axis=1)
    for j in range(3):  # every true speaker maps onto one cluster
        assert len(set(assigned[truth == j].tolist())) == 1
    assert len(B.cluster(E, starts, ends, 2, None, None)) == 2
    assert len(B.cluster(E, starts, ends, None, None, 2)) == 2
    assert len(B.cluster(E, starts, ends, None, 4, None)) == 4
    assert len(B.cluster(E, starts, ends, 12, None, None)) == 12  # asked for more than exist: still obeyed
    assert len(B.cluster(E[:2], starts[:2], ends[:2], None, None, None)) == 1


def test_every_other_window_leaves_out_only_windows_its_neighbours_cover():
    # Two stretches of 0.5 s-apart windows, and a short reply alone between them.
    starts = np.array([0, 50, 100, 150, 180, 400, 600, 650, 700])
    ends = np.array([120, 170, 220, 270, 300, 440, 720, 770, 820])
    first = B._every_other(starts, ends)
    assert first.tolist() == [True, False, True, False, True, True, True, False, True]
    for i in np.flatnonzero(~first):  # what is left out, its two neighbours hear
        assert first[i - 1] and first[i + 1] and starts[i + 1] <= ends[i - 1]


def test_windows_between_neighbours_that_disagree_or_hesitate_are_heard():
    first = np.array([True, False, True, False, True, False, True])
    sims = np.array([[0.9, 0.1], [0, 0], [0.8, 0.2], [0, 0], [0.2, 0.7], [0, 0], [0.45, 0.4]])
    # Windows 1 (both neighbours sure of speaker 0) stays out; 3 (a change) and 5 (window 6 unsure) are heard.
    assert B._unsure_between(sims, first).tolist() == [False, False, False, True, False, True, False]


def test_unknown_diarizer_name():
    with pytest.raises(UsageError, match="unknown diarizer"):
        get_diarizer("nemo")


# --------------------------------------------------------------------------------------- real encoder


def test_speech_detection_follows_the_truth(panel):
    samples, truth = panel
    mask = vad.detect_speech(samples)
    inside = np.zeros_like(mask)
    for t in truth["turns"]:
        inside[int(t["start"] * 100) : int(np.ceil(t["end"] * 100))] = True
    precision = (mask & inside).sum() / mask.sum()
    recall = (mask & inside).sum() / inside.sum()
    # Recall leaves room for the pauses between sentences, which the truth counts as part of a turn.
    assert precision > 0.99 and recall > 0.85, (precision, recall)


def test_silence_and_empty_input(diarizer):
    assert diarizer.diarize(np.zeros(0, np.float32)) == Diarization((), ())
    noise = (np.random.default_rng(0).random(5 * SR) - 0.5).astype(np.float32) * 1e-3
    calls = []
    assert diarizer.diarize(noise, hook=lambda *a: calls.append(a)).turns == ()
    assert calls and calls[-1][1] == calls[-1][2]


def test_panel_excerpt(diarizer, panel):
    samples, truth = panel
    excerpt = samples[: 80 * SR]
    calls = []
    d = diarizer.diarize(excerpt, hook=lambda *a: calls.append(a))
    assert diarizer.name == "builtin:campplus+segmentation-3.0"
    assert d.turns == d.exclusive
    assert d.turns[0].speaker == "SPEAKER_00", "labels follow first appearance"
    for a, b in zip(d.turns, d.turns[1:]):
        assert a.start < a.end <= b.start < b.end
    assert 0 <= d.turns[0].start and d.turns[-1].end <= 80.0
    assert {c[0] for c in calls} == {"diarize"} and calls[-1][1] == calls[-1][2]
    assert all(b[1] >= a[1] for a, b in zip(calls, calls[1:])), "progress never goes back"
    speakers_in_excerpt = {t["speaker"] for t in truth["turns"] if t["start"] < 80}
    assert len(d.labels) == len(speakers_in_excerpt)
    assert len(diarizer.diarize(excerpt, num_speakers=2).labels) == 2
    assert len(diarizer.diarize(excerpt, max_speakers=2).labels) <= 2


def test_a_long_recording_embeds_the_windows_near_changes_only(diarizer, panel, monkeypatch):
    # The demo panel taken for a long recording: a clustering of 60 windows, so every other window is
    # embedded first and the rest only near a change of speaker. The turns must hold what all windows give.
    from majlis import campplus

    samples, _ = panel
    full = diarizer.diarize(samples)
    embedded = []
    embed = campplus.embed
    monkeypatch.setattr(campplus, "embed",
                        lambda pieces, hook=None: embedded.append(len(pieces)) or embed(pieces, hook=hook))
    monkeypatch.setattr(B, "MAX_CLUSTER_UNITS", 60)
    calls = []
    coarse = diarizer.diarize(samples, hook=lambda *a: calls.append(a))
    starts, _ = V.window_layout(np.flatnonzero(V.analyse(samples).speech), step=B.WINDOW_STEP, split=B.SPLIT)
    assert sum(embedded[:2]) < 0.75 * len(starts)  # every other window, then those near a change
    assert coarse.labels == full.labels
    assert all(b[1] >= a[1] for a, b in zip(calls, calls[1:])) and calls[-1][1] == calls[-1][2]
    sys.path.insert(0, str(ROOT / "bench"))
    import panels

    same = [(t.speaker, t.start, t.end) for t in full.exclusive]
    assert panels.der(same, [(t.speaker, t.start, t.end) for t in coarse.exclusive], collar=0.0) < 0.01


@pytest.mark.skipif(not (shutil.which("flite") and shutil.which("sox")), reason="needs flite and sox")
def test_overlapped_turn_change(diarizer, tmp_path):
    def say(voice, text):
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(tmp_path / "x.wav")], check=True)
        return decode(tmp_path / "x.wav").astype(np.float64)

    a = say("slt", "The museum reopened in the spring after three years of repairs to the roof and walls.")
    b = say("awb", "I went on the first day, and the new rooms for the carpets were quite wonderful to see.")
    overlap = int(0.6 * SR)
    mix = np.zeros(len(a) + len(b) - overlap + SR)
    mix[: len(a)] += a
    mix[len(a) - overlap : len(a) - overlap + len(b)] += b
    mix += np.random.default_rng(0).normal(0, 5e-4, len(mix))
    d = diarizer.diarize(mix.astype(np.float32))
    assert len(d.labels) == 2
    changes = [t.start for t in d.exclusive[1:]]
    assert len(changes) == 1
    # The change falls inside (or right at the edge of) the stretch where both talk.
    both = ((len(a) - overlap) / SR, len(a) / SR)
    assert both[0] - 0.3 <= changes[0] <= both[1] + 0.3
    for x, y in zip(d.exclusive, d.exclusive[1:]):
        assert x.end <= y.start
    # And both voices have a turn over most of that stretch.
    first, second = (next(t for t in d.turns if t.speaker == lab) for lab in d.labels)
    assert min(first.end, second.end, both[1]) - max(first.start, second.start, both[0]) >= 0.5 * (both[1] - both[0])


def test_spectrum_of_scattered_frames_is_the_same_as_of_all(panel):
    # The diarizer asks for the frames a batch of windows covers, never the whole recording at once.
    samples = panel[0][: 20 * SR + 123]
    full = V.mel_at(samples, np.arange(1 + len(samples) // V.HOP), 0.5)
    picked = np.array([0, 1, 7, 500, 501, 1999, len(full) - 2, len(full) - 1])
    for chunk in (8192, 3):
        part = V.mel_at(samples, picked, 0.5, chunk=chunk)
        assert np.abs(part - full[picked]).max() <= 1e-6 * np.abs(full).max()


def test_encoder_input_is_resemblyzers_mel(panel):
    from resemblyzer.audio import wav_to_mel_spectrogram

    samples = panel[0][: 20 * SR + 123]
    reference = wav_to_mel_spectrogram(samples * 0.5)
    for chunk in (60_000, 333, 7):  # the chunked spectrum is the same whatever the chunk size
        mel = V.mel_at(samples, np.arange(1 + len(samples) // V.HOP), 0.5, chunk=chunk)
        assert mel.shape == reference.shape
        assert np.abs(mel - reference).max() <= 1e-5 * np.abs(reference).max()
