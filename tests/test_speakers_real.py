"""Who said it, on real voices: pyannote's sample.wav (a real phone call with reference words) and panels of
LibriSpeech readers with exact truth (bench/panels.py), clean and as a 32 kbps telephone-band episode named
from studio samples. The numbers are bench/speakers.py's; the bars are what the code reaches today
(BENCHMARKS.md, section "Who said it"), so a change that loses ground fails here."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from majlis import decision, speakers
from majlis.audio import decode
from majlis.diarize import get_diarizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import panels  # noqa: E402
from speakers import enroll_dir, majority  # noqa: E402

pytestmark = pytest.mark.slow
needs_voices = pytest.mark.skipif(not panels.reader_clips(panels.WOMEN[0]), reason="shared LibriSpeech voices absent")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def diarizer():
    return get_diarizer("builtin")


def _words_right(words, d, samples, *, named=False, reference=()):
    said = panels.assign_words(words, d, samples)
    assert all(w.speaker_confidence is not None and 0 <= w.speaker_confidence <= 1 for w in said)
    return panels.words_right(words, [w.speaker for w in said], named=named, reference=reference)


def test_sample_wav(diarizer):
    wav, ref_turns, ref_words = panels.pyannote_sample()
    samples = decode(wav)
    d = diarizer.diarize(samples)
    assert len(d.labels) == 2, "both speakers found without being told how many"
    hyp = [(t.speaker, t.start, t.end) for t in d.turns]
    # Measured 0.044 (0.039 with the overlap model every 2.5 s; 0.25 s collar; 0.023 with resemblyzer's windows, which lost the one-second turns less
    # often but the real-voice panels' readers more; 0.114 before this work; issue 17's bar is 0.06) and
    # 95.1% of the letter-timed words (issue 17's bar is 95%; 92.6% with resemblyzer's windows).
    assert panels.der(ref_turns, hyp, 0.25) <= 0.05
    assert _words_right(ref_words, d, samples, reference=ref_turns) >= 0.95
    # Measured 0.81 (0.89 with the overlap model every 2.5 s, which covered no more over the 36 real-voice
    # episodes for twice the CPU; issue 17's bar is 0.70).
    assert panels.overlap_coverage(ref_turns, hyp) >= 0.78


@pytest.fixture(scope="module")
def panel():
    if not panels.reader_clips(panels.WOMEN[0]):
        pytest.skip("shared LibriSpeech voices absent")
    return panels.make_panel(0, panels.WOMEN[:3], seconds=60)


@needs_voices
@pytest.mark.parametrize("channel", ["clean", "phone32k"])
def test_real_voice_panel_named_across_channels(diarizer, panel, channel, tmp_path):
    x = panel.samples if channel == "clean" else panels.telephone(panel.samples)
    d = diarizer.diarize(x)
    folder = enroll_dir(panel.enrollment, tmp_path)
    naming = speakers.name_speakers(x, d, enrollment_dir=folder, names={})
    # Every enrolled reader is named, by the voice the truth says (a fixed 0.90 cosine named nobody on
    # the phone line).
    truth = panels.mapping(panel.turns, [(t.speaker, t.start, t.end) for t in d.exclusive])
    assert sorted(naming.mapping.values()) == sorted(panel.speakers)
    assert all(naming.mapping[lab] == ref for lab, ref in truth.items())
    right = _words_right(panel.words, naming.apply(d), x, named=True)
    assert right >= (0.98 if channel == "clean" else 0.95), right  # measured 1.000 and 0.981


@needs_voices
def test_voice_nobody_enrolled_is_not_given_an_absent_name(diarizer, panel, tmp_path):
    x = panels.telephone(panel.samples)
    d = diarizer.diarize(x)
    readers = panel.speakers
    absent = next(r for r in panels.WOMEN if r not in readers)
    clips = [panels.load_clip(c) for c in panels.reader_clips(absent)[: panels.SAMPLE_UTTERANCES]]
    folder = enroll_dir({readers[0]: panel.enrollment[readers[0]], readers[1]: panel.enrollment[readers[1]],
                         absent: clips}, tmp_path)
    naming = speakers.name_speakers(x, d, enrollment_dir=folder, names={})
    truth = panels.mapping(panel.turns, [(t.speaker, t.start, t.end) for t in d.exclusive])
    stranger = [lab for lab, ref in truth.items() if ref == readers[2]]
    assert stranger and naming.mapping[stranger[0]].startswith(speakers.UNKNOWN)
    assert absent not in naming.mapping.values()


@needs_voices
@pytest.mark.parametrize("seed, first, bar", [(1, 2, 0.97), (3, 1, 0.96)])
def test_phone_episode_named_from_studio_samples_heard_through_its_line(diarizer, tmp_path, seed, first, bar):
    """Panels 1 and 3 on the phone line. Panel 1: with the samples as recorded, one reader stayed Unknown
    (61.5% of words by name); filtered to the episode's channel first (channel.channel_gain), all three are
    named. Panel 3: resemblyzer's clustering split one reader in two (82.2% of words by name when neither
    half was named); CAM++ windows keep her whole. With one reader's samples swapped for an absent reader's, that reader
    stays Unknown and the others keep their names."""
    readers = panels.WOMEN[first : first + 3]
    panel = panels.make_panel(seed, readers, seconds=60)
    x = panels.telephone(panel.samples)
    d = diarizer.diarize(x)
    truth = majority(panel.turns, d)
    naming = speakers.name_speakers(x, d, enrollment_dir=enroll_dir(panel.enrollment, tmp_path / "all"), names={})
    assert sorted(set(naming.mapping.values())) == sorted(readers)
    assert all(naming.mapping[lab] == ref for lab, ref in truth.items())
    right = _words_right(panel.words, naming.apply(d), x, named=True)
    assert right >= bar, right  # measured 0.982 and 0.972 (0.927 and 0.991 with resemblyzer's windows)
    absent = next(r for r in panels.WOMEN if r not in readers)
    clips = [panels.load_clip(c) for c in panels.reader_clips(absent)[: panels.SAMPLE_UTTERANCES]]
    folder = enroll_dir({**{r: panel.enrollment[r] for r in readers[:-1]}, absent: clips}, tmp_path / "mixed")
    other = speakers.name_speakers(x, d, enrollment_dir=folder, names={})
    stranger = [lab for lab, ref in truth.items() if ref == readers[-1]]
    assert stranger and all(other.mapping[lab].startswith(speakers.UNKNOWN) for lab in stranger)
    assert absent not in other.mapping.values()
    assert all(other.mapping[lab] == ref for lab, ref in truth.items() if ref in readers[:-1])


@needs_voices
@pytest.mark.parametrize("seed, readers, channel, der_bar", [(14, panels.WOMEN[:4], "phone32k", 0.15),
                                                             (5, panels.WOMEN[2:5], "clean", 0.06)])
def test_a_reader_split_in_two_is_made_one_by_her_voice_prints(diarizer, monkeypatch, tmp_path, seed, readers,
                                                               channel, der_bar):
    """Panels 14 (phone) and 5 (clean): resemblyzer's clustering split one reader in two there (5 speakers
    for 4, 4 for 3; DER 0.279 and 0.272). CAM++ windows no longer do, so the clustering is made to find one
    speaker too many, as it did. The halves' prints of a minute of speech make her one again (measured DER
    0.135 and 0.037) and every reader is named."""
    from majlis import campplus
    from majlis.diarize import builtin

    found = builtin.cluster
    monkeypatch.setattr(builtin, "cluster", lambda E, starts, ends, num, lo, hi:
                        found(E, starts, ends, len(readers) + 1, lo, hi))
    panel = panels.make_panel(seed, readers, seconds=60)
    x = panel.samples if channel == "clean" else panels.telephone(panel.samples)
    d = diarizer.diarize(x)
    assert len(d.labels) == len(readers), d.labels
    der = panels.der(panel.turns, [(t.speaker, t.start, t.end) for t in d.turns], 0.25)
    assert der <= der_bar, der
    naming = speakers.name_speakers(x, d, enrollment_dir=enroll_dir(panel.enrollment, tmp_path), names={})
    assert sorted(naming.mapping.values()) == sorted(readers)
    assert _words_right(panel.words, naming.apply(d), x, named=True) >= 0.95
    # Without the prints' say, the split stands.
    monkeypatch.setattr(campplus, "SAME_PERSON", 1.01)
    assert len(diarizer.diarize(x).labels) == len(readers) + 1


# ------------------------------------------------------------------------------- the decision, by hand


def _unit(x):
    x = np.asarray(x, float)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_decision_sees_through_a_shared_channel():
    rng = np.random.default_rng(0)
    people = _unit(rng.standard_normal((3, 64)))
    studio, phone = _unit(rng.standard_normal(64)), _unit(rng.standard_normal(64))
    enrolled = _unit(people + 0.7 * studio)
    heard = _unit(people[[2, 0, 1]] + 0.7 * phone)  # the same people in another order, on a phone line
    raw = heard @ enrolled.T
    assert raw.max() < decision.MATCH_THRESHOLD  # a fixed bar names nobody
    assert sorted(decision.decide(heard, enrolled, [0, 1, 2], None)) == [(0, 2), (1, 0), (2, 1)]
    # A number given by the caller is a plain bar and nothing else.
    assert decision.decide(heard, enrolled, [0, 1, 2], 0.9) == []


def test_close_names_and_close_threshold_warn(caplog):
    heard = _unit([[1.0, 0.0, 0.0]])
    enrolled = _unit([[0.91, 0.4146, 0.0], [0.905, 0.0, 0.4254]])  # cosines 0.91 and 0.905
    with caplog.at_level(logging.WARNING, logger="majlis"):
        pairs = decision.decide(heard, enrolled, [0, 1], None, rows=["SPEAKER_00"], names=["Tahir", "Pannier"])
    assert pairs == [(0, 0)]
    lines = [r.getMessage() for r in caplog.records]
    assert any("as much like Tahir (0.910) as Pannier (0.905)" in m for m in lines), lines
    assert any("SPEAKER_00 named Tahir at 0.910, within 0.02 of the 0.90 threshold" in m for m in lines), lines
