"""End to end on the demo panel with the default engines (offline: faster-whisper's bundled tiny.en and the
builtin diarizer), through the CLI users run:
named speakers (IER), words carried by the right speaker, schema invariants, exports in real parsers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "audio" / "panel.mp3"
TRUTH = json.loads((ROOT / "audio" / "panel.truth.json").read_text())
PANELISTS = {"Tahir", "Mudaqiq", "Tolibov", "Pannier"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("panel")
    proc = subprocess.run(
        [sys.executable, "-m", "majlis", "transcribe", str(PANEL), "--diarizer", "builtin",
         "--speakers", str(ROOT / "audio" / "speakers"), "--format", "all", "--out", str(out)],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "panel.json").read_text())


def test_schema_and_timing_invariants(run):
    _, doc = run
    assert doc["schema"] == "majlis.transcript/1"
    assert doc["episode"] == "panel" and doc["language"] == "en"
    assert doc["engines"] == {"asr": "faster-whisper:tiny.en", "diarizer": "builtin:campplus+segmentation-3.0"}
    assert doc["duration"] == pytest.approx(TRUTH["duration"], abs=0.1)
    assert set(doc["speakers"]) == PANELISTS
    last = 0.0
    for i, seg in enumerate(doc["segments"]):
        assert seg["id"] == i
        assert seg["speaker"] in PANELISTS
        assert 0 <= seg["start"] <= seg["end"] <= doc["duration"]
        assert seg["words"], "a segment is a run of words"
        assert seg["start"] == seg["words"][0]["start"] and seg["end"] == seg["words"][-1]["end"]
        for w in seg["words"]:
            assert w["speaker"] == seg["speaker"]
            assert last <= w["start"] <= w["end"]
            last = w["start"]
        assert seg["text"] == " ".join(w["word"] for w in seg["words"])


def test_named_speaker_error_rate(run):
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.identification import IdentificationErrorRate

    _, doc = run
    reference, hypothesis = Annotation(), Annotation()
    for i, t in enumerate(TRUTH["turns"]):
        reference[Segment(t["start"], t["end"]), i] = t["speaker"]
    for i, t in enumerate(doc["turns"]):
        hypothesis[Segment(t["start"], t["end"]), i] = t["speaker"]
    ier = IdentificationErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis)
    print(f"named-speaker IER on the demo panel: {ier:.4f}")
    assert ier <= 0.05
    assert set(doc["speaker_scores"]) == PANELISTS


def test_words_carry_their_turns_speaker(run):
    _, doc = run
    inside = right = 0
    for seg in doc["segments"]:
        for w in seg["words"]:
            mid = (w["start"] + w["end"]) / 2
            owners = {t["speaker"] for t in TRUTH["turns"] if t["start"] <= mid <= t["end"]}
            if len(owners) == 1:  # words in overlapped speech belong to two turns: no single right answer
                inside += 1
                right += w["speaker"] in owners
    print(f"{right}/{inside} words inside a truth turn carry its speaker")
    assert inside > 200
    assert right / inside >= 0.97


def test_vtt_has_voices_and_two_line_cues(run):
    import webvtt

    out, doc = run
    captions = webvtt.read(str(out / "panel.vtt"))
    assert len(captions) >= len(doc["segments"])
    voices = {c.voice for c in captions}
    assert voices == PANELISTS
    for c in captions:
        assert 1 <= len(c.lines) <= 2


def test_srt_opens_in_a_standard_parser(run):
    import srt

    out, doc = run
    subs = list(srt.parse((out / "panel.srt").read_text()))
    assert len(subs) >= len(doc["segments"])
    assert {s.content.split(":", 1)[0] for s in subs} == PANELISTS
    assert all(len(s.content.splitlines()) <= 2 for s in subs)


def test_every_export_is_written(run):
    out, _ = run
    names = sorted(p.name for p in out.iterdir() if p.name != ".majlis")  # the stage cache
    assert names == sorted(f"panel.{e}" for e in ("json", "srt", "vtt", "txt", "tsv", "rttm", "podcast.json", "html",
                                                  "docx"))
    txt = (out / "panel.txt").read_text()
    assert txt.startswith("Tahir [00:00:0")


def test_side_by_side_gives_way_to_the_asr_and_changes_nothing():
    """The diarizer, naming and the re-check's voices run beside the ASR in a thread of lower priority, and the
    calling thread's priority is left as it was; the transcript is the one the stages give run one after the other (real speech: pyannote's
    sample.wav)."""
    import threading

    import pyannote.audio

    from majlis import pipeline

    wav = Path(pyannote.audio.__file__).parent / "sample" / "sample.wav"
    options = pipeline.Options(asr="faster-whisper", diarizer="builtin")
    seen = {}

    def hook(stage, done, total):
        tid = threading.get_native_id()
        seen[stage] = (tid, os.getpriority(os.PRIO_PROCESS, tid))

    staged = {}
    caller = threading.get_native_id()
    for beside in (True, False):
        engines = pipeline.Engines.load(options, side_by_side=beside)
        try:
            staged[beside] = pipeline.run_stages(wav, options=options, engines=engines, hook=hook)
        finally:
            engines.close()
        if beside:
            assert staged[True].heard is not None
            niceness = os.getpriority(os.PRIO_PROCESS, caller)
            assert seen["diarize"][0] != caller and seen["diarize"][1] == niceness + pipeline.BESIDE_NICENESS
            assert seen["name"] == seen["diarize"] and seen["asr"] == (caller, niceness)
    assert staged[True].diarization == staged[False].diarization and staged[True].naming == staged[False].naming
    # The ASR's temperature fallback samples at random: both ways are given the same words to attribute.
    from dataclasses import replace

    words = [[(w.word, w.speaker, w.speaker_confidence) for s in t.segments for w in s.words]
             for t in (pipeline.assemble(st, episode="sample")
                       for st in (staged[True], replace(staged[False], asr=staged[True].asr)))]
    assert words[0] == words[1] and len({w[1] for w in words[0]}) == 2
