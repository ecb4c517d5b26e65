"""The committed demo panel (audio/) is a faithful stand-in: truth that matches the audio sample for sample,
four voices with enough turns each, a few overlaps, enrollment clips that read other sentences, and a
generator that rebuilds the committed bytes exactly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from majlis.audio import SAMPLE_RATE, decode, probe

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "audio"
MAKE = AUDIO / "make_panel.py"
TRUTH = json.loads((AUDIO / "panel.truth.json").read_text(encoding="utf-8"))
SCRIPT = json.loads((AUDIO / "panel_script.json").read_text(encoding="utf-8"))
NAMES = ["Tahir", "Mudaqiq", "Tolibov", "Pannier"]
needs_flite = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("flite", "sox", "ffmpeg")), reason="needs flite, sox and ffmpeg"
)


@pytest.fixture(scope="module")
def panel() -> np.ndarray:
    return decode(AUDIO / "panel.mp3")


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).split()


def _overlapping_pairs(turns):
    return [(a, b) for a, b in zip(turns, turns[1:]) if b["start"] < a["end"]]


def test_truth_structure():
    assert set(TRUTH) == {"episode", "audio", "duration", "speakers", "turns"}
    assert TRUTH["episode"] == "panel" and TRUTH["audio"] == "panel.mp3"
    assert TRUTH["speakers"] == NAMES
    for t in TRUTH["turns"]:
        assert set(t) == {"speaker", "start", "end", "text"}
        assert t["speaker"] in NAMES
        assert 0 < t["start"] < t["end"] <= TRUTH["duration"]
        assert round(t["start"], 3) == t["start"] and round(t["end"], 3) == t["end"]
        assert t["text"].strip() == t["text"] and t["text"]
        assert not re.search(r"\d", t["text"]), "numbers are spelled out for the recogniser"


def test_turns_are_what_the_script_says_in_order():
    turns = TRUTH["turns"]
    assert [t["start"] for t in turns] == sorted(t["start"] for t in turns)
    assert [(t["speaker"], t["text"]) for t in turns] == [(d["speaker"], " ".join(d["text"])) for d in SCRIPT["demo"]]
    assert turns[0]["speaker"] == turns[-1]["speaker"] == "Tahir"
    assert all(a["speaker"] != b["speaker"] for a, b in zip(turns, turns[1:]))


def test_length_and_speaker_balance():
    assert 120 <= TRUTH["duration"] <= 240
    assert 25 <= len(TRUTH["turns"]) <= 35
    for name in NAMES:
        mine = [t for t in TRUTH["turns"] if t["speaker"] == name]
        assert len(mine) >= 4, name
        assert sum(t["end"] - t["start"] for t in mine) >= 20, name


def test_article_quotes_are_spoken():
    by = {n: " ".join(t["text"] for t in TRUTH["turns"] if t["speaker"] == n) for n in NAMES}
    assert "first arrested and then executed under Sharia law for betrayal but we cannot confirm" in by["Tolibov"]
    assert "by the last day only two Uzbek fighters remained at the scene" in by["Mudaqiq"]
    assert "in Badakhshan is still headed by a Tajik" in by["Mudaqiq"]


def test_pauses_and_a_few_overlaps():
    turns = TRUTH["turns"]
    pairs = _overlapping_pairs(turns)
    assert 1 <= len(pairs) <= 2
    for a, b in pairs:
        assert 0.3 <= a["end"] - b["start"] <= 0.8 + 0.001
    for i, t in enumerate(turns):  # only neighbours ever overlap
        assert all(u["start"] >= t["end"] for u in turns[i + 2 :])
    pauses = [b["start"] - a["end"] for a, b in zip(turns, turns[1:]) if b["start"] >= a["end"]]
    assert min(pauses) >= 0.3 - 0.001 and max(pauses) <= 0.9 + 0.001
    assert len(set(round(p, 2) for p in pauses)) > len(pauses) // 2, "pauses vary"


def test_mp3_matches_truth_duration_and_is_small(panel):
    info = probe(AUDIO / "panel.mp3")
    assert info.codec == "mp3" and info.sample_rate == SAMPLE_RATE and info.channels == "mono"
    assert len(panel) / SAMPLE_RATE == pytest.approx(TRUTH["duration"], abs=0.1)
    committed = [AUDIO / "panel.mp3", *(AUDIO / "speakers" / f"{n}.mp3" for n in NAMES)]
    assert sum(p.stat().st_size for p in committed) < 3_000_000


def test_turn_bounds_are_tight_on_the_audio(panel):
    sr = SAMPLE_RATE
    turns = sorted(TRUTH["turns"], key=lambda t: t["start"])
    covered, cursor, gaps = 0.0, 0.0, []
    for t in turns:
        if t["start"] > cursor:
            gaps.append((cursor, t["start"]))
        cursor = max(cursor, t["end"])
    gaps.append((cursor, TRUTH["duration"]))
    margin = 0.005  # mp3 smears a few milliseconds across a cut
    for a, b in gaps:
        quiet = panel[int((a + margin) * sr) : int((b - margin) * sr)]
        assert np.abs(quiet).max() < 0.01, f"speech inside the pause {a:.3f}-{b:.3f}"
    floor = np.sqrt(np.mean(np.concatenate([panel[int(a * sr) : int(b * sr)] for a, b in gaps]) ** 2))
    for t in turns:
        s, e = int(t["start"] * sr), int(t["end"] * sr)
        head, tail = panel[s : s + sr // 40], panel[e - sr // 40 : e]
        assert np.sqrt(np.mean(head**2)) > 2 * floor, f"turn at {t['start']} starts before its speech"
        assert np.sqrt(np.mean(tail**2)) > 2 * floor, f"turn at {t['start']} ends after its speech"
        assert np.sqrt(np.mean(panel[s:e] ** 2)) > 20 * floor
        covered += t["end"] - t["start"]
    assert covered / TRUTH["duration"] > 0.7


def test_enrollment_clips_read_other_sentences():
    spoken = " ".join(_words(" ".join(t["text"] for t in TRUTH["turns"])))
    assert sorted(p.stem for p in (AUDIO / "speakers").glob("*.mp3")) == sorted(NAMES)
    for name in NAMES:
        seconds = len(decode(AUDIO / "speakers" / f"{name}.mp3")) / SAMPLE_RATE
        assert 8.0 <= seconds <= 15.0, (name, seconds)
        for sentence in SCRIPT["enrollment"][name]:
            assert " ".join(_words(sentence)) not in spoken, (name, sentence)


def test_bad_arguments_are_one_line_errors(tmp_path):
    proc = subprocess.run([sys.executable, str(MAKE), "--minutes", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--minutes must be between" in proc.stderr
    proc = subprocess.run(
        [sys.executable, str(MAKE), "--script", str(tmp_path / "missing.json"), "--out", str(tmp_path / "p")],
        capture_output=True, text=True,
    )
    if shutil.which("flite") and shutil.which("sox"):
        assert proc.returncode == 1 and proc.stderr.startswith("make_panel: error:") and "missing.json" in proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
@needs_flite
def test_rebuilds_the_committed_files_byte_for_byte(tmp_path):
    subprocess.run([sys.executable, str(MAKE), "--out", str(tmp_path / "panel"), "--speakers-dir",
                    str(tmp_path / "speakers")], check=True, capture_output=True)
    assert (tmp_path / "panel.truth.json").read_bytes() == (AUDIO / "panel.truth.json").read_bytes()
    assert (tmp_path / "panel.mp3").read_bytes() == (AUDIO / "panel.mp3").read_bytes()
    for name in NAMES:
        assert (tmp_path / "speakers" / f"{name}.mp3").read_bytes() == (AUDIO / "speakers" / f"{name}.mp3").read_bytes()


@pytest.mark.slow
@needs_flite
def test_longer_panels_continue_the_conversation(tmp_path):
    out = tmp_path / "long"
    subprocess.run([sys.executable, str(MAKE), "--minutes", "5", "--out", str(out), "--speakers-dir",
                    str(tmp_path / "speakers")], check=True, capture_output=True)
    truth = json.loads(out.with_suffix(".truth.json").read_text())
    turns = truth["turns"]
    assert truth["episode"] == "long" and truth["audio"] == "long.mp3"
    assert 4 * 60 <= truth["duration"] <= 5 * 60
    assert len(decode(out.with_suffix(".mp3"))) / SAMPLE_RATE == pytest.approx(truth["duration"], abs=0.1)
    body = TRUTH["turns"][:-1]
    assert [t["text"] for t in turns[: len(body)]] == [t["text"] for t in body]
    assert turns[-1]["text"] == TRUTH["turns"][-1]["text"]
    extra = turns[len(body) : -1]
    assert len(extra) >= 10 and {t["speaker"] for t in extra} == set(NAMES)
    assert len({t["text"] for t in extra}) == len(extra), "recombined, not looped"
    repeated = [t for t in extra if t["text"] in {b["text"] for b in body}]
    assert len(repeated) <= len(extra) // 4
    assert all(a["speaker"] != b["speaker"] for a, b in zip(turns, turns[1:]))
    assert [t["start"] for t in turns] == sorted(t["start"] for t in turns)
