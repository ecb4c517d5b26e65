"""Naming diarized speakers: --names parsing, the one-to-one voice assignment, enrollment folders and their
errors, and end to end (builtin diarization + voice naming) on the demo panel and on a conversation that no
part of majlis was tuned on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from majlis import campplus, channel, decision, speakers
from majlis.audio import decode
from majlis.diarize import Diarization
from majlis.errors import AudioError, UsageError
from majlis.speakers import Naming, enrollment, enrollment_clips, name_speakers, parse_names
from majlis.types import Turn

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "audio" / "panel.mp3"
SPEAKERS = ROOT / "audio" / "speakers"
SR = 16000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------ --names


def test_parse_names():
    assert parse_names("SPEAKER_00=Tahir, SPEAKER_01 = Amin Mudaqiq") == {
        "SPEAKER_00": "Tahir",
        "SPEAKER_01": "Amin Mudaqiq",
    }


@pytest.mark.parametrize("spec", ["", "SPEAKER_00", "SPEAKER_00=", "=Tahir", "A=B=C", "A=x,,B=y", "A=x,A=y"])
def test_parse_names_rejects_bad_syntax(spec):
    with pytest.raises(UsageError) as e:
        parse_names(spec)
    assert "\n" not in str(e.value) and "--names" in str(e.value)


def _diarization(*turns: tuple[str, float, float]) -> Diarization:
    t = tuple(Turn(*x) for x in turns)
    return Diarization(t, t)


def test_manual_names_only():
    d = _diarization(("SPEAKER_01", 0, 1), ("SPEAKER_00", 1, 2), ("SPEAKER_02", 2, 3))
    naming = name_speakers(np.zeros(3 * SR, np.float32), d, enrollment_dir=None, names={"SPEAKER_00": "Tahir"})
    assert naming.mapping == {"SPEAKER_01": "SPEAKER_01", "SPEAKER_00": "Tahir", "SPEAKER_02": "SPEAKER_02"}
    assert naming.scores == {}
    named = naming.apply(d)
    assert [t.speaker for t in named.turns] == ["SPEAKER_01", "Tahir", "SPEAKER_02"]
    assert named.exclusive == named.turns


def test_stray_manual_name_warns(caplog):
    d = _diarization(("SPEAKER_00", 0, 1))
    with caplog.at_level("WARNING", logger="majlis"):
        naming = name_speakers(np.zeros(SR, np.float32), d, enrollment_dir=None, names={"SPEAKER_07": "X"})
    assert naming.mapping == {"SPEAKER_00": "SPEAKER_00"}
    assert "SPEAKER_07" in caplog.text


def test_apply_keeps_times_and_unmapped_labels():
    d = Diarization((Turn("A", 0, 2), Turn("B", 1, 3)), (Turn("A", 0, 1), Turn("B", 1, 3)))
    named = Naming({"A": "Tahir"}, {"Tahir": 0.9}).apply(d)
    assert named.turns == (Turn("Tahir", 0, 2), Turn("B", 1, 3))
    assert named.exclusive == (Turn("Tahir", 0, 1), Turn("B", 1, 3))


# --------------------------------------------------------------------------------------------- enrollment


def test_enrollment_layouts(tmp_path):
    (tmp_path / "Tahir.mp3").write_bytes(b"x")
    (tmp_path / "Pannier").mkdir()
    (tmp_path / "Pannier" / "a.wav").write_bytes(b"x")
    (tmp_path / "Pannier" / "b.flac").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / ".hidden.wav").write_bytes(b"x")
    clips = enrollment_clips(tmp_path)
    assert sorted(clips) == ["Pannier", "Tahir"]
    assert [p.name for p in clips["Pannier"]] == ["a.wav", "b.flac"]


def test_enrollment_errors_name_the_problem(tmp_path):
    with pytest.raises(UsageError, match="no such speakers folder"):
        enrollment(tmp_path / "missing")
    with pytest.raises(UsageError, match="no voice clips"):
        enrollment(tmp_path)
    (tmp_path / "Empty").mkdir()
    with pytest.raises(UsageError, match="Empty"):
        enrollment(tmp_path)
    shutil.rmtree(tmp_path / "Empty")
    bad = tmp_path / "Broken.mp3"
    bad.write_bytes(b"this is not an mp3 at all" * 10)
    with pytest.raises(AudioError) as e:
        enrollment(tmp_path)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_enrollment_clip_without_speech(tmp_path):
    quiet = tmp_path / "Silent.wav"
    _write_wav(quiet, np.zeros(3 * SR, np.float32))
    with pytest.raises(AudioError, match="too little speech"):
        enrollment(tmp_path)


def test_enrollment_is_cached_per_folder_state(tmp_path):
    shutil.copy(SPEAKERS / "Tahir.mp3", tmp_path / "Tahir.mp3")
    first = enrollment(tmp_path)
    assert enrollment(tmp_path) is first
    shutil.copy(SPEAKERS / "Pannier.mp3", tmp_path / "Pannier.mp3")
    second = enrollment(tmp_path)
    assert second is not first and sorted(second) == ["Pannier", "Tahir"]


# ------------------------------------------------------------------------------ voices on the demo panel


def _ier(truth_turns, named: Diarization) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.identification import IdentificationErrorRate

    reference, hypothesis = Annotation(), Annotation()
    for i, t in enumerate(truth_turns):
        reference[Segment(t["start"], t["end"]), i] = t["speaker"]
    for i, t in enumerate(named.turns):
        hypothesis[Segment(t.start, t.end), i] = t.speaker
    return IdentificationErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis, uem=None)


@pytest.fixture(scope="module")
def panel():
    from majlis.diarize import get_diarizer

    samples = decode(PANEL)
    truth = json.loads((ROOT / "audio" / "panel.truth.json").read_text())
    return samples, truth, get_diarizer("builtin")


@pytest.mark.slow
def test_panel_named_by_voice(panel):
    samples, truth, diarizer = panel
    diarization = diarizer.diarize(samples)
    assert len(diarization.labels) == 4, "the number of speakers is estimated, not given"
    naming = name_speakers(samples, diarization, enrollment_dir=SPEAKERS, names={})
    assert sorted(naming.mapping.values()) == sorted(truth["speakers"])
    assert all(s >= decision.PRINT_MATCH for s in naming.scores.values()) and len(naming.scores) == 4
    ier = _ier(truth["turns"], naming.apply(diarization))
    assert ier <= 0.05, f"identification error rate {ier:.3f}"
    # A threshold above every score (say, samples from another microphone judged strictly) names nobody.
    strict = name_speakers(samples, diarization, enrollment_dir=SPEAKERS, names={},
                           threshold=max(naming.scores.values()) + 0.001)
    assert all(name.startswith(speakers.UNKNOWN) for name in strict.mapping.values())


@pytest.mark.slow
def test_naming_and_the_word_recheck_take_what_diarizing_kept_then_let_the_recording_go(panel, monkeypatch):
    from majlis import attribution, voice as builtin

    samples, _, diarizer = panel
    analysed = []
    real = builtin.frame_db
    monkeypatch.setattr(builtin, "frame_db", lambda x, *a, **k: analysed.append(len(x)) or real(x, *a, **k))
    builtin.forget(samples)  # naming in the tests before kept it for a re-check that never came
    diarization = diarizer.diarize(samples)
    assert analysed.count(len(samples)) == 1
    name_speakers(samples, diarization, enrollment_dir=SPEAKERS, names={})
    assert analysed.count(len(samples)) == 1, "naming analysed the recording again"
    assert attribution.hear(samples, diarization.exclusive) is not None
    assert analysed.count(len(samples)) == 1, "the word re-check analysed the recording again"
    # The cache held the recording itself: in a batch worker, a decoded file's mapping until the next file.
    assert builtin._last == []
    builtin.analyse(samples)
    builtin.forget(samples[:10])  # another array: kept
    assert builtin._last
    builtin.forget(samples)  # what the pipeline does at the end of a file, whoever used the analysis last
    assert builtin._last == []


@pytest.mark.slow
def test_panel_manual_name_wins_and_missing_voice_is_unknown(panel, tmp_path):
    samples, truth, diarizer = panel
    diarization = diarizer.diarize(samples, num_speakers=4)
    # Pannier is not enrolled: his cluster must not borrow a name. Tahir is named by hand.
    for name in ("Tahir", "Mudaqiq", "Tolibov"):
        shutil.copy(SPEAKERS / f"{name}.mp3", tmp_path / f"{name}.mp3")
    first = diarization.exclusive[0].speaker  # Tahir opens the panel
    naming = name_speakers(samples, diarization, enrollment_dir=tmp_path, names={first: "Muhammad Tahir"})
    assert naming.mapping[first] == "Muhammad Tahir"
    assert sorted(naming.mapping.values()) == ["Mudaqiq", "Muhammad Tahir", "Tolibov", "Unknown 1"]
    assert set(naming.scores) == {"Mudaqiq", "Tolibov"}
    reference = [dict(t, speaker={"Tahir": "Muhammad Tahir", "Pannier": "Unknown 1"}.get(t["speaker"], t["speaker"]))
                 for t in truth["turns"]]
    assert _ier(reference, naming.apply(diarization)) <= 0.05


# ------------------------------------------------------------- a conversation nobody tuned anything on


VOICES = {"Ada": ("slt", ["pitch", "-250"]), "Bram": ("rms", ["pitch", "-150", "tempo", "0.92"]),
          "Chen": ("kal16", ["pitch", "250"])}
CONVERSATION = [  # speaker, silence before the turn in seconds (negative: starts over the previous one), text
    ("Chen", 0.0, "Good morning. Our topic today is water, and who gets to use it when the rivers run low."),
    ("Ada", 0.6, "Thank you. In the valleys I visited last summer, farmers waited weeks for their turn at the canal."),
    ("Bram", 0.45, "That matches what we measured. The upstream dams hold back more water every year."),
    ("Ada", 0.0, "And nobody downstream is asked."),
    ("Chen", 0.7, "Bram, is there any agreement between the countries on the river?"),
    ("Bram", 0.5, "There is an old one. It sets quotas, but the quotas ignore how much the glaciers have shrunk."),
    ("Ada", -0.5, "Which is exactly why the farmers stopped trusting it."),
    ("Chen", 0.55, "Yes."),
    ("Bram", 0.6, "New reservoirs could help, yet every new reservoir also means more evaporation in the heat."),
    ("Chen", 0.4, "So what would you change first?"),
    ("Ada", 0.65, "I would pay for lined canals. Half of the water is lost before it reaches a single field."),
    ("Chen", 0.6, "Thank you both. That is all the time we have for today."),
]
ENROLL = {
    "Ada": "My grandmother kept a small garden behind the house. She grew tomatoes, onions and a few herbs.",
    "Bram": "The laboratory opens at eight and closes late. We test samples from wells all over the province.",
    "Chen": "Welcome to the programme, where we listen to people from every corner of the region.",
}


def _write_wav(path: Path, x: np.ndarray) -> None:
    subprocess.run(["sox", "-t", "f32", "-r", str(SR), "-c", "1", "-", str(path)],
                   input=np.asarray(x, np.float32).tobytes(), check=True, capture_output=True)


def _say(work: Path, name: str, text: str) -> np.ndarray:
    voice, effects = VOICES[name]
    raw = work / "raw.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True, capture_output=True)
    out = subprocess.run(["sox", "-R", "-V1", str(raw), "-t", "f32", "-c", "1", "-r", str(SR), "-"] + effects,
                         check=True, capture_output=True).stdout
    x = np.frombuffer(out, np.float32).astype(np.float64)
    n = len(x) // 160
    rms = np.sqrt((x[: n * 160].reshape(n, 160) ** 2).mean(axis=1))
    voiced = np.flatnonzero(rms > rms.max() * 0.01)  # -40 dB: the truth bounds are the voiced part
    x = x[voiced[0] * 160 : (voiced[-1] + 1) * 160]
    return x * (0.07 / np.sqrt((x**2).mean()))


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    if not (shutil.which("flite") and shutil.which("sox")):
        pytest.skip("needs flite and sox to synthesise a conversation")
    work = tmp_path_factory.mktemp("conversation")
    placed, truth, end = [], [], int(0.4 * SR)
    for name, gap, text in CONVERSATION:
        x = _say(work, name, text)
        start = end + int(gap * SR)
        placed.append((start, x))
        truth.append({"speaker": name, "start": start / SR, "end": (start + len(x)) / SR})
        end = start + len(x)
    rng = np.random.default_rng(7)
    total = end + int(0.5 * SR)
    mix = (rng.random(total) - rng.random(total)) * 0.0008  # room tone, about -68 dBFS
    for start, x in placed:
        mix[start : start + len(x)] += x
    folder = work / "voices"
    folder.mkdir()
    for name, text in ENROLL.items():
        clip = _say(work, name, text)
        if name == "Bram":  # the DIR/<Name>/*.<ext> layout, two clips
            (folder / name).mkdir()
            half = len(clip) // 2
            _write_wav(folder / name / "one.wav", clip[:half])
            _write_wav(folder / name / "two.wav", clip[half:])
        else:
            _write_wav(folder / f"{name}.wav", clip)
    path = work / "talk.wav"
    _write_wav(path, mix)
    return decode(path), truth, folder


@pytest.mark.slow
def test_unseen_conversation_named_by_voice(conversation):
    from majlis.diarize import get_diarizer

    samples, truth, folder = conversation
    diarization = get_diarizer("builtin").diarize(samples)
    assert len(diarization.labels) == 3
    naming = name_speakers(samples, diarization, enrollment_dir=folder, names={})
    assert sorted(naming.mapping.values()) == ["Ada", "Bram", "Chen"]
    assert _ier(truth, naming.apply(diarization)) <= 0.05
    # The one-word reply between two long turns keeps its own speaker.
    yes = next(t for t in truth if t["end"] - t["start"] < 1.0)
    mid = (yes["start"] + yes["end"]) / 2
    assert [t.speaker for t in naming.apply(diarization).exclusive if t.start <= mid < t.end] == ["Chen"]


@pytest.mark.slow
def test_unenrolled_voice_becomes_unknown(conversation, tmp_path):
    from majlis.diarize import get_diarizer

    samples, truth, folder = conversation
    shutil.copy(folder / "Ada.wav", tmp_path / "Ada.wav")
    shutil.copytree(folder / "Bram", tmp_path / "Bram")
    diarization = get_diarizer("builtin").diarize(samples, num_speakers=3)
    naming = name_speakers(samples, diarization, enrollment_dir=tmp_path, names={})
    assert sorted(naming.mapping.values()) == ["Ada", "Bram", "Unknown 1"]
    reference = [dict(t, speaker="Unknown 1" if t["speaker"] == "Chen" else t["speaker"]) for t in truth]
    assert _ier(reference, naming.apply(diarization)) <= 0.05


# ------------------------------------------------------------------------- enrollment heard through the episode


def _band(lo: float, hi: float) -> np.ndarray:
    """Which CHANNEL_FFT bands lie between lo and hi Hz."""
    f = np.fft.rfftfreq(channel.CHANNEL_FFT, 1 / SR)
    return (f >= lo) & (f <= hi)


def _speech_like_spectrum(rng) -> np.ndarray:
    """dB per band: a falling speech-like tilt with a few dB of ripple."""
    f = np.fft.rfftfreq(channel.CHANNEL_FFT, 1 / SR)
    return -20 * np.log10(1 + f / 500) + rng.normal(0, 2, len(f))


def test_channel_gain_cuts_what_a_phone_line_drops():
    rng = np.random.default_rng(1)
    studio = _speech_like_spectrum(rng)
    phone = studio - 7.0 + rng.normal(0, 2, len(studio))  # another level, the same shape in the band...
    phone[~_band(300, 3400)] -= 50.0  # ...and 50 dB less outside 300-3,400 Hz
    gain = channel.channel_gain(phone, studio)
    assert (gain <= 0).all(), "never a boost"
    assert (gain[_band(400, 3300)] == 0).all(), "the band the line carries is left as it is"
    for outside in (_band(0, 200), _band(3500, 8000)):
        assert np.all((gain[outside] < -40) & (gain[outside] > -60)), gain[outside]


def test_channel_gain_leaves_the_same_channel_alone():
    rng = np.random.default_rng(2)
    sample = _speech_like_spectrum(rng)
    # Another mix of voices on the same line: up to 10 dB apart here and there, and one band 30 dB down.
    episode = sample + 12.0 + rng.uniform(-10, 10, len(sample))
    episode[100] -= 30.0
    assert not (channel.channel_gain(episode, sample) < 0).any()
    # A sample cut at 4 kHz against a full-band episode: what it lacks is no reason to cut the rest.
    short = sample.copy()
    short[_band(4000, 8000)] -= 60.0
    assert not (channel.channel_gain(sample, short) < 0).any()


def test_speech_spectrum_and_apply_gain_bring_a_sample_to_the_line():
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(10 * SR).astype(np.float32) * 0.1
    line = np.where(_band(300, 3400), 0.0, -60.0)
    phone = channel.apply_gain(noise[: 5 * SR], line)  # an "episode" on the line
    studio = noise[5 * SR :]  # a "sample" of the same source, full band
    episode, sample = channel.speech_spectrum(phone), channel.speech_spectrum(studio)
    assert episode[_band(3800, 7000)].max() < episode[_band(500, 3000)].min() - 40
    gain = channel.channel_gain(episode, sample)
    matched = channel.speech_spectrum(channel.apply_gain(studio, gain))
    inside = _band(500, 3000)
    assert np.ptp(matched[inside] - sample[inside]) < 1.5, "the band itself keeps its shape"
    # (dB relative to each one's total power: the sample and the episode now agree in and out of the band)
    assert np.abs(matched[inside] - episode[inside]).max() < 2.5  # two halves of the noise: a dB or two per band
    assert np.abs(matched[_band(3800, 7000)] - episode[_band(3800, 7000)]).max() < 6.0
    # Deterministic, and the same channel changes nothing.
    assert np.array_equal(gain, channel.channel_gain(episode, sample))
    assert not (channel.channel_gain(channel.speech_spectrum(noise), sample) < 0).any()
    # Spans pick the frames: silence outside them is not averaged in.
    padded = np.concatenate([np.zeros(SR, np.float32), studio])
    within = channel.speech_spectrum(padded, [(1.0, 6.0)])
    assert np.abs(within - sample).max() < 1.0
    assert channel.speech_spectrum(np.zeros(100, np.float32)) is None


def test_enrollment_through_the_episodes_channel(tmp_path):
    shutil.copy(SPEAKERS / "Tahir.mp3", tmp_path / "Tahir.mp3")
    recorded = enrollment(tmp_path)
    clip = decode(tmp_path / "Tahir.mp3")
    # The same channel: the voiceprint as recorded, not embedded again.
    same = enrollment(tmp_path, channel=channel.speech_spectrum(clip))
    assert np.array_equal(same["Tahir"], recorded["Tahir"])
    phone = channel.apply_gain(clip, np.where(_band(300, 3400), 0.0, -60.0))
    heard = enrollment(tmp_path, channel=channel.speech_spectrum(phone))
    assert not np.array_equal(heard["Tahir"], recorded["Tahir"])
    assert abs(np.linalg.norm(heard["Tahir"]) - 1) < 1e-6
    # What the episode's line makes of the voice: the matched print sounds like it, the recorded one does not.
    on_line = speakers.voice_embeddings(phone, {0: None}, remember=False)[0]
    assert heard["Tahir"] @ on_line > 0.97 > recorded["Tahir"] @ on_line, (heard["Tahir"] @ on_line,
                                                                            recorded["Tahir"] @ on_line)
    assert enrollment(tmp_path) is recorded  # matching never disturbs the cache of the recorded prints


def test_naming_key_changes_with_the_naming_code(tmp_path, monkeypatch):
    from majlis import voices
    from majlis.pipeline import Options

    shutil.copy(SPEAKERS / "Tahir.mp3", tmp_path / "Tahir.mp3")
    o = Options(speakers_dir=tmp_path)
    first = voices.naming_fingerprint(o)
    assert voices.naming_fingerprint(o) == first
    monkeypatch.setattr(speakers, "NAMING_VERSION", "naming/test")
    assert voices.naming_fingerprint(o) != first
    assert voices.naming_fingerprint(Options()) == ""  # nothing to name from: nothing naming's code can change


def test_a_voice_split_in_two_takes_its_name_twice():
    rng = np.random.default_rng(4)
    people = _unit_rows(rng.standard_normal((4, 64)))
    line = _unit_rows(rng.standard_normal(64))
    enrolled = people[:3]  # A, B, C enrolled; D is not
    # A, split by the diarizer into a long part and a short, noisier one; all on a phone line (raw cosines sink).
    halves = _unit_rows(people[[0, 0]] + rng.standard_normal((2, 64)) / 8 * np.array([[0.2], [0.6]]))
    heard = _unit_rows(np.vstack([halves, people[[1, 2]]]) + 0.8 * line)
    assert (heard @ enrolled.T).max() < decision.MATCH_THRESHOLD
    pairs = decision.decide(heard, enrolled, [0, 1, 2], None)
    assert sorted(pairs) == [(0, 0), (2, 1), (3, 2)]  # one name, one voice
    extra = decision.split_voices(heard, enrolled, [0, 1, 2], pairs)
    assert extra == [(1, 0)]
    # The short part, were it someone else (D, nobody enrolled): no one's other half, though every name it
    # could take is held.
    other = heard.copy()
    other[1] = _unit_rows(people[3] + 0.8 * line)
    pairs = decision.decide(other, enrolled, [0, 1, 2], None)
    assert sorted(pairs) == [(0, 0), (2, 1), (3, 2)]
    assert decision.split_voices(other, enrolled, [0, 1, 2], pairs) == []
    # A part that sounds like A's name but less like A's voice than SPLIT_MIN stays apart.
    loose = heard.copy()
    loose[1] = _unit_rows(people[0] + rng.standard_normal(64) / 8 + 0.8 * line)
    pairs = decision.decide(loose, enrolled, [0, 1, 2], None)
    assert sorted(pairs) == [(0, 0), (2, 1), (3, 2)] and loose[1] @ loose[0] < decision.SPLIT_MIN
    assert decision.split_voices(loose, enrolled, [0, 1, 2], pairs) == []


def test_prints_are_matched_one_to_one_and_a_split_voice_keeps_its_name():
    """CAM++ prints (decision.match_prints): the cosine itself decides, with no calibration to the episode."""
    rng = np.random.default_rng(7)
    people = _unit_rows(rng.standard_normal((4, 64)))
    enrolled = people[:3]  # A, B, C enrolled; D is not

    def near(rows, cosine):  # unit vectors at about `cosine` to each of `rows`
        noise = _unit_rows(rng.standard_normal((len(rows), 64)))
        return _unit_rows(rows * cosine + noise * np.sqrt(1 - cosine**2))

    heard = near(people[[0, 1, 2]], 0.8)
    assert sorted(decision.match_prints(heard, enrolled, [0, 1, 2])) == [(0, 0), (1, 1), (2, 2)]
    # Under the bar: nobody takes a name.
    weak = near(people[[0, 1, 2]], 0.6)
    assert decision.match_prints(weak, enrolled, [0, 1, 2]) == []
    # A split into two halves alike by more than campplus.SAME_PERSON: both halves take A.
    half = _unit_rows(heard[0] + 0.2 * _unit_rows(rng.standard_normal(64)))
    assert heard[0] @ half >= campplus.SAME_PERSON
    split = np.vstack([heard, half])
    assert sorted(decision.match_prints(split, enrolled, [0, 1, 2])) == [(0, 0), (1, 1), (2, 2), (3, 0)]
    # D, nobody enrolled, sounds like no one enough: it stays unnamed though C's name is free.
    stranger = np.vstack([heard[:2], near(people[[3]], 0.8)])
    assert sorted(decision.match_prints(stranger, enrolled, [0, 1, 2])) == [(0, 0), (1, 1)]
    # A name taken by hand is not offered (cols): its voice is left unnamed.
    assert sorted(decision.match_prints(heard, enrolled, [1, 2])) == [(1, 1), (2, 2)]


def test_prints_warn_on_close_names_only_where_a_name_is_near(caplog):
    import logging

    heard = _unit_rows([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    enrolled = _unit_rows([[0.80, 0.6, 0.0], [0.79, -0.613, 0.0]])  # voice 0: cosines 0.80 and 0.79
    with caplog.at_level(logging.WARNING, logger="majlis"):
        pairs = decision.match_prints(heard, enrolled, [0, 1], rows=["SPEAKER_00", "SPEAKER_01"], names=["A", "B"])
    assert pairs == [(0, 0)]
    lines = [r.getMessage() for r in caplog.records]
    assert any("SPEAKER_00 sounds as much like A (0.800) as B (0.790)" in m for m in lines), lines
    assert not any("SPEAKER_01" in m for m in lines), lines  # 0 to both names: Unknown, nothing to check


def _unit_rows(x):
    x = np.asarray(x, float)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)
