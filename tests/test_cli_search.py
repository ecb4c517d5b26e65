"""`majlis index / search / clip / speakers / episodes` as users run them: real files, real index, real ffmpeg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from majlis.audio import SAMPLE_RATE, decode, ffmpeg_binary
from majlis.cli import main
from majlis.files import transcript_json
from majlis.types import Segment, Transcript
from test_index import SHARED, SHARED_BY, TRUTH, distinctive_phrases, timed_words, truth_transcript, vocabulary

ROOT = Path(__file__).resolve().parents[1]
PANEL_MP3 = ROOT / "audio" / "panel.mp3"
HIT_KEYS = ["episode", "audio", "speaker", "start", "end", "segment_start", "segment_end", "text", "score", "url"]
HEAVY = ("torch", "whisper", "pyannote", "resemblyzer", "pocketsphinx", "dask", "distributed")


def majlis(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "majlis", *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("majlis: error: "), proc.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])


@pytest.fixture(scope="module")
def tone(tmp_path_factory) -> Path:
    """10 s of silence with a 1 kHz beep from 4.0 to 5.0 s, and its transcript: the word "beep" there."""
    d = tmp_path_factory.mktemp("tone")
    wav = d / "tone.wav"
    subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=f=1000:d=1,adelay=4000,apad=whole_dur=10", "-ar", "16000", "-ac", "1", str(wav)], check=True)
    t = Transcript("tone", "tone.wav", 10.0, "en", {}, ("Signal",), (
        Segment(0, "Signal", 0.5, 3.5, "x", tuple(timed_words("Silence before the", 0.5, 3.5))),
        Segment(1, "Signal", 4.0, 5.0, "x", tuple(timed_words("beep", 4.0, 5.0))),
    ))
    (d / "tone.json").write_text(transcript_json(t))
    return d


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tone) -> Path:
    """An index holding the panel (transcript beside a copy-free link to the real recording) and the tone."""
    d = tmp_path_factory.mktemp("cli")
    panel = truth_transcript().with_changes(audio=str(PANEL_MP3))
    (d / "panel.json").write_text(transcript_json(panel))
    proc = majlis("index", str(d / "panel.json"), str(tone / "tone.json"), "--index", str(d / "index"))
    assert proc.returncode == 0, proc.stderr
    assert f"indexed 2 episodes ({len(panel.segments) + 2} segments" in proc.stdout
    return d / "index"


@pytest.fixture(scope="module")
def quote():
    """A phrase said once in the panel: (phrase, its segment, index of its first word)."""
    phrases = distinctive_phrases(truth_transcript())
    return phrases[len(phrases) // 2]


def test_search_prints_one_line_per_hit_with_brackets(indexed, quote):
    phrase, segment, first = quote
    proc = majlis("search", f'"{phrase}"', "--index", str(indexed))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    episode, speaker, times, snippet = lines[0].split(None, 3)
    assert (episode, speaker) == ("panel", segment.speaker)
    from majlis.cli.search import clock

    assert times == f"{clock(segment.words[first].start)}–{clock(segment.words[first + 3].end)}"
    assert "[" + " ".join(w.word for w in segment.words[first:first + 4]) + "]" in snippet


def test_query_words_may_be_separate_arguments(indexed, quote):
    phrase, segment, first = quote
    words = [w.word.strip(".,?!") for w in segment.words[first:first + 4]]
    absent = next(w for w in ("zeppelin", "xylophone") if w not in segment.text.lower())
    proc = majlis("search", *words, f"-{words[0]}", "--index", str(indexed))
    assert proc.returncode == 1, proc.stderr  # -word is a NOT, not an option: nothing can match
    proc = majlis("search", *words, f"-{absent}", "--index", str(indexed), "--speaker", segment.speaker)
    assert proc.returncode == 0 and f"{segment.speaker}" in proc.stdout, proc.stderr
    assert_one_line_error(majlis("search", "sharia", "--limt", "3", "--index", str(indexed)), 2, "--limt")


def test_no_match_exits_1(indexed):
    proc = majlis("search", "zeppelin", "--index", str(indexed))
    assert proc.returncode == 1 and proc.stdout == ""
    assert "no matches" in proc.stderr and "Traceback" not in proc.stderr
    assert invoke("search", "zeppelin", "--index", str(indexed), "--json").stdout.strip() == "[]"


def test_json_schema(indexed):
    word, ids = max(vocabulary(truth_transcript()).values(), key=lambda v: len(v[1]))
    r = invoke("search", word, "--index", str(indexed), "--json", "--limit", "3")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert len(hits) == 3
    for h in hits:
        assert list(h) == HIT_KEYS
        assert h["start"] >= h["segment_start"] and h["end"] <= h["segment_end"] + 0.01
        assert h["url"] == f"{PANEL_MP3}#t={h['start']:g},{h['end']:g}"
        assert round(h["start"], 3) == h["start"]
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_speaker_and_episode_filters(indexed):
    r = invoke("search", f'"{SHARED}"', "--index", str(indexed), "--json")
    assert sorted(h["speaker"] for h in json.loads(r.output)) == sorted(SHARED_BY)
    r = invoke("search", f'"{SHARED}"', "--index", str(indexed), "--json", "--speaker", SHARED_BY[1].lower())
    assert [h["speaker"] for h in json.loads(r.output)] == [SHARED_BY[1]]
    r = invoke("search", "the", "--index", str(indexed), "--json", "--episode", "tone")
    assert {h["episode"] for h in json.loads(r.output)} == {"tone"}
    proc = majlis("search", "taliban", "--index", str(indexed), "--speaker", "Nobody")
    assert_one_line_error(proc, 2, "--speaker Nobody", TRUTH["speakers"][0])
    proc = majlis("search", "taliban", "--index", str(indexed), "--episode", "nope")
    assert_one_line_error(proc, 2, "--episode nope", "panel")


@pytest.mark.parametrize("query,needle", [('"sharia law', "unbalanced quote"), ("NOT", "NOT needs a word"),
                                          ("", "empty query"), ("taliban OR", "OR needs a word"),
                                          ("-taliban", "only exclude"), ("(sharia law", "parentheses")])
def test_malformed_query_exits_2(indexed, query, needle):
    assert_one_line_error(majlis("search", query, "--index", str(indexed)), 2, needle)


def test_missing_index_and_bad_transcripts(tmp_path):
    assert_one_line_error(majlis("search", "x", "--index", str(tmp_path / "none")), 2, "no index")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_one_line_error(majlis("index", str(bad), "--index", str(tmp_path / "ix")), 2, "bad.json", "not JSON")
    assert_one_line_error(majlis("index", str(tmp_path / "gone.json"), "--index", str(tmp_path / "ix")), 2,
                          "no such file")
    assert_one_line_error(majlis("index", str(PANEL_MP3), "--index", str(tmp_path / "ix")), 2,
                          "a recording, not a transcript", "majlis transcribe")
    assert not (tmp_path / "ix").exists()  # nothing is created when an input is bad


def test_a_folder_of_dotfiles_is_an_empty_index(tmp_path):
    # A fresh clone's index/ holds only .gitkeep: searching it says nothing is indexed; indexing into it works.
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / ".gitkeep").write_text("")
    assert_one_line_error(majlis("search", "taliban", cwd=tmp_path), 2, "index", "nothing is indexed")
    (tmp_path / "t.json").write_text(transcript_json(truth_transcript()))
    proc = majlis("index", "t.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = majlis("search", "taliban", cwd=tmp_path)
    assert proc.returncode == 0 and "panel" in proc.stdout, proc.stderr
    assert (tmp_path / "index" / ".gitkeep").exists()


def test_index_optimize_keeps_every_hit(indexed, tmp_path):
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(indexed, copy)
    def hits() -> list[dict]:
        # Scores move a little: merging drops deleted documents from BM25's statistics.
        out = json.loads(invoke("search", "taliban", "--index", str(copy), "--json", "--limit", "100").output)
        return sorted((h | {"score": None} for h in out), key=lambda h: (h["episode"], h["start"]))

    before = hits()
    assert invoke("index", "--optimize", "--index", str(copy)).exit_code == 0
    assert hits() == before and before
    assert_one_line_error(majlis("index", "--index", str(tmp_path / "ix")), 2, "--optimize")


def test_speakers_and_episodes(indexed):
    rows = json.loads(invoke("speakers", "--index", str(indexed), "--json").output)
    assert {r["speaker"] for r in rows} == set(TRUTH["speakers"]) | {"Signal"}
    assert [r["talk_time"] for r in rows] == sorted((r["talk_time"] for r in rows), reverse=True)
    text = invoke("speakers", "--index", str(indexed)).output
    assert text.splitlines()[0].split()[0] == rows[0]["speaker"]
    eps = json.loads(invoke("episodes", "--index", str(indexed), "--json").output)
    assert [e["episode"] for e in eps] == ["panel", "tone"]
    assert eps[1]["transcript"].endswith("tone.json") and eps[1]["segments"] == 2
    text = invoke("episodes", "--index", str(indexed)).output
    assert "panel" in text and "IMU panel" in text and "Signal" in text


def _rms(x: np.ndarray, a: float, b: float) -> float:
    seg = x[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)]
    return float(np.sqrt(np.mean(seg ** 2)))


def test_clip_cuts_the_right_second(indexed, tmp_path):
    hit = json.loads(invoke("search", "beep", "--index", str(indexed), "--json").output)[0]
    assert (hit["start"], hit["end"]) == (4.0, pytest.approx(4.0 + 0.8, abs=0.02))
    out = tmp_path / "beep.wav"
    r = invoke("clip", "--episode", "tone", "--start", "0:04", "--end", "5.0", "-o", str(out), "--index", str(indexed))
    assert r.exit_code == 0, r.output
    x = decode(out)
    assert len(x) / SAMPLE_RATE == pytest.approx(1.5, abs=0.01)  # 0.25 s padding each side
    assert _rms(x, 0.3, 1.2) > 0.05  # the beep (ffmpeg's sine: amplitude 1/8), 0.25 s in
    assert _rms(x, 0.0, 0.2) < 0.01 and _rms(x, 1.3, 1.5) < 0.01
    assert [p.name for p in tmp_path.iterdir()] == ["beep.wav"]  # no temp file left behind
    # padding is clamped at both ends of the recording
    for start, end, expected in (("0", "0.5", 0.75), ("9.5", "10", 0.75)):
        r = invoke("clip", "--episode", "tone", "--start", start, "--end", end, "-o", str(out), "--index", str(indexed))
        assert r.exit_code == 0 and len(decode(out)) / SAMPLE_RATE == pytest.approx(expected, abs=0.01)


def test_clip_errors(indexed, tmp_path):
    args = ["--index", str(indexed), "--episode", "tone"]
    assert_one_line_error(majlis("clip", *args, "--start", "3", "--end", "2", "-o", str(tmp_path / "a.mp3")),
                          2, "after --start")
    assert_one_line_error(majlis("clip", *args, "--start", "1", "--end", "2", "-o", str(tmp_path / "a.xyz")),
                          2, "unknown clip format")
    assert_one_line_error(majlis("clip", *args, "--start", "20", "--end", "22", "-o", str(tmp_path / "a.mp3")),
                          2, "past the end")
    assert_one_line_error(majlis("clip", "--index", str(indexed), "--episode", "x", "--start", "1", "--end", "2",
                                 "-o", str(tmp_path / "a.mp3")), 2, "not in")
    assert list(tmp_path.iterdir()) == []


def test_search_clips_from_the_panel_recording(indexed, tmp_path, quote):
    r = invoke("search", f'"{quote[0]}"', "--index", str(indexed), "--json", "--clips", str(tmp_path / "clips"))
    assert r.exit_code == 0, r.output
    (hit,) = json.loads(r.output)
    clip = Path(hit.pop("clip"))
    assert list(hit) == HIT_KEYS and clip.parent == tmp_path / "clips" and clip.suffix == ".mp3"
    seconds = len(decode(clip)) / SAMPLE_RATE
    assert seconds == pytest.approx(hit["end"] - hit["start"] + 0.5, abs=0.06)  # mp3 frames: a few ms either way
    assert _rms(decode(clip), 0.0, seconds) > 0.01  # speech, not silence


def test_index_busy_exits_3(indexed, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from whoosh import index
        w = index.open_dir({str(indexed)!r}).writer()
        print("locked", flush=True)
        sys.stdin.readline()
        w.cancel()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        episodes = json.loads(invoke("episodes", "--index", str(indexed), "--json").output)
        tone_json = next(e["transcript"] for e in episodes if e["episode"] == "tone")
        proc = majlis("index", tone_json, "--index", str(indexed))
        assert_one_line_error(proc, 3, "another process is writing")
        assert majlis("search", "beep", "--index", str(indexed)).returncode == 0  # reading goes on meanwhile
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_search_loads_no_engine(indexed):
    code = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from majlis.cli import main
        r = CliRunner().invoke(main, ["search", "uzbek*", "--index", {str(indexed)!r}])
        assert r.exit_code == 0, r.output
        print(",".join(m for m in {HEAVY!r} if any(k == m or k.startswith(m + ".") for k in sys.modules)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"search imported {proc.stdout.strip()}"


def test_empty_filters_and_field_syntax_are_one_line_errors(indexed):
    assert_one_line_error(majlis("search", "taliban", "--index", str(indexed), "--episode", ""), 2, "--episode ''")
    assert_one_line_error(majlis("search", "taliban", "--index", str(indexed), "--speaker", ""), 2, "--speaker ''")
    assert_one_line_error(majlis("search", "audio:foo", "--index", str(indexed)), 2, "not supported")
    assert_one_line_error(majlis("search", "taliban~99", "--index", str(indexed)), 2, "at most 2 typos")
    assert_one_line_error(majlis("search", "taliban", "speaker:Nobody", "--index", str(indexed)), 2,
                          "Nobody", TRUTH["speakers"][0])
    r = invoke("search", f'"{SHARED}"', f"speaker:{SHARED_BY[0]}", "--index", str(indexed), "--json")
    assert r.exit_code == 0 and [h["speaker"] for h in json.loads(r.output)] == [SHARED_BY[0]]
    r = invoke("search", "ＴＡＬＩＢＡＮ", "--index", str(indexed), "--json")
    assert r.exit_code == 0 and json.loads(r.output) == json.loads(invoke("search", "taliban", "--index", str(indexed),
                                                                          "--json").output)


def test_an_index_left_empty_answers_no_matches(tmp_path):
    from majlis.search.index import Index

    Index(tmp_path / "ix", create=True)  # what a kill between creating and the first commit leaves
    proc = majlis("search", "taliban", "--index", str(tmp_path / "ix"))
    assert proc.returncode == 1 and "no matches" in proc.stderr and "Traceback" not in proc.stderr
