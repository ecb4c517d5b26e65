"""Exports, each read back by a real parser: webvtt-py, srt, pyannote's RTTM loader, csv, json."""

from __future__ import annotations

import csv
import html
import io
import json
import os

import pytest

from majlis.errors import OutputError, UsageError
from majlis.files import read_transcript
from majlis.types import Segment, Transcript, Turn, Word
from majlis.export.writers import LINE_CHARS, WRITERS, Writer, clock, parse_formats, write_transcript

LONG = ("the islamic movement of uzbekistan was founded in the late nineteen nineties by tahir yuldashev and "
        "juma namangani, and it fought in tajikistan & afghanistan <before> moving to waziristan.")


def seg(i: int, speaker: str, text: str, start: float, step: float = 0.35) -> Segment:
    words = tuple(Word(w, start + k * step, start + k * step + step * 0.8, speaker) for k, w in enumerate(text.split()))
    return Segment(i, speaker, words[0].start, words[-1].end, text, words)


@pytest.fixture
def transcript() -> Transcript:
    segments = (
        seg(0, "Muhammad Tahir", "Welcome to our majlis.", 0.5),
        seg(1, "Muhammad Tahir", "Bruce, where did it begin?", 2.0),
        seg(2, "Bruce Pannier", LONG, 4.5),
        seg(3, "Amin Mudaqiq", "Tab\there and a line\nbreak.", 15.0),
    )
    turns = (Turn("Muhammad Tahir", 0.4, 4.2), Turn("Bruce Pannier", 4.3, 14.6), Turn("Amin Mudaqiq", 14.9, 17.0),
             Turn("Bruce Pannier", 16.5, 17.2))
    return Transcript("panel", "panel.mp3", 18.0, "en", {"asr": "sphinx:en-us", "diarizer": "builtin:resemblyzer"},
                      ("Amin Mudaqiq", "Bruce Pannier", "Muhammad Tahir"), segments, turns,
                      {"Muhammad Tahir": 0.81}, {"title": "IMU"})


def words_of(t: Transcript) -> list[str]:
    return [w.word for s in t.segments for w in s.words]


def test_parse_formats():
    assert parse_formats("json") == ["json"]
    assert parse_formats(" SRT, json ,srt,") == ["srt", "json"]
    assert parse_formats("all") == list(WRITERS) == ["json", "srt", "vtt", "txt", "tsv", "rttm", "podcast", "html",
                                                     "docx"]
    assert parse_formats("json,all") == list(WRITERS)
    with pytest.raises(UsageError) as e:
        parse_formats("json,pdf")
    assert "'pdf'" in str(e.value) and "json, srt, vtt, txt, tsv, rttm, podcast" in str(e.value)
    with pytest.raises(UsageError):
        parse_formats(" , ")


def test_clock():
    assert clock(3723.4567) == "01:02:03.457"
    assert clock(59.9996, ",") == "00:01:00,000"
    assert clock(0) == "00:00:00.000"


def test_json_is_the_transcript_schema(tmp_path, transcript):
    (path,) = write_transcript(transcript, tmp_path, ["json"])
    assert path == tmp_path / "panel.json"
    assert read_transcript(path).to_dict() == transcript.to_dict()


def test_vtt_reads_in_webvtt_py_with_voices_and_two_line_cues(tmp_path, transcript):
    import webvtt

    (path,) = write_transcript(transcript, tmp_path, ["vtt"])
    text = path.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n\n")
    assert "tajikistan &amp; afghanistan" in text and "&lt;before&gt;" in text and "<before>" not in text
    captions = list(webvtt.read(str(path)))
    assert len(captions) > len(transcript.segments)  # the long segment became several cues
    by_speaker: dict[str, list[str]] = {}
    for c in captions:
        assert 1 <= len(c.lines) <= 2
        for line in c.lines:
            visible = html.unescape(line.split(">", 1)[1] if line.startswith("<v ") else line)
            assert len(visible) <= LINE_CHARS or " " not in visible
        by_speaker.setdefault(c.voice, []).append(html.unescape(c.text.replace("\n", " ")))
    assert set(by_speaker) == set(transcript.speakers)
    assert " ".join(by_speaker["Bruce Pannier"]) == LONG
    # Cue times come from the words: each cue starts on a word start and ends on a word end.
    starts = {clock(w.start) for w in transcript.words}
    ends = {clock(w.end) for w in transcript.words}
    assert all(c.start in starts and c.end in ends for c in captions)
    long_cues = [c for c in captions if c.voice == "Bruce Pannier"]
    assert long_cues[0].start == clock(transcript.segments[2].start)
    assert long_cues[-1].end == clock(transcript.segments[2].end)


def test_srt_reads_in_the_srt_parser_with_speaker_names(tmp_path, transcript):
    import srt

    (path,) = write_transcript(transcript, tmp_path, ["srt"])
    subs = list(srt.parse(path.read_text(encoding="utf-8")))
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    assert len(subs) > len(transcript.segments)
    texts: dict[str, list[str]] = {}
    for s in subs:
        lines = s.content.splitlines()
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= LINE_CHARS or " " not in line for line in lines)
        name, body = s.content.split(": ", 1)
        texts.setdefault(name, []).append(body.replace("\n", " "))
        assert s.start < s.end
    assert set(texts) == set(transcript.speakers)
    assert " ".join(texts["Bruce Pannier"]) == LONG
    assert " ".join(texts["Muhammad Tahir"]) == "Welcome to our majlis. Bruce, where did it begin?"
    assert subs[0].start.total_seconds() == pytest.approx(0.5)
    assert subs[-1].end.total_seconds() == pytest.approx(transcript.segments[-1].end, abs=0.001)


def test_txt_has_one_paragraph_per_turn(tmp_path, transcript):
    (path,) = write_transcript(transcript, tmp_path, ["txt"])
    paragraphs = path.read_text(encoding="utf-8").split("\n\n")
    assert paragraphs[0] == "Muhammad Tahir [00:00:00]: Welcome to our majlis. Bruce, where did it begin?"
    assert paragraphs[1] == f"Bruce Pannier [00:00:04]: {LONG}"
    assert paragraphs[2] == "Amin Mudaqiq [00:00:15]: Tab here and a line break.\n"
    assert len(paragraphs) == 3


def test_tsv_rows_in_seconds_and_one_line_each(tmp_path, transcript):
    from dataclasses import replace

    first = transcript.segments[0]
    sure = replace(first, words=tuple(replace(w, speaker_confidence=c) for w, c in zip(first.words, (0.9, 0.42, 0.8))))
    transcript = transcript.with_changes(segments=(sure,) + transcript.segments[1:])
    (path,) = write_transcript(transcript, tmp_path, ["tsv"])
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t"))
    assert rows[0] == ["start", "end", "speaker", "text", "speaker_confidence"]
    assert len(rows) == 1 + len(transcript.segments)
    assert rows[1][:4] == ["0.500", f"{transcript.segments[0].end:.3f}", "Muhammad Tahir", "Welcome to our majlis."]
    assert rows[4][3] == "Tab here and a line break."
    assert all(len(r) == 5 for r in rows)
    # The row's speaker_confidence is its least sure word's; blank where no word has one.
    assert rows[1][4] == "0.420" and rows[2][4] == ""
    for row, seg in zip(rows[1:], transcript.segments):
        found = [w.speaker_confidence for w in seg.words if w.speaker_confidence is not None]
        assert row[4] == (f"{min(found):.3f}" if found else "")


def test_rttm_loads_in_pyannote_with_the_diarization_turns(tmp_path, transcript):
    from pyannote.database.util import load_rttm

    (path,) = write_transcript(transcript, tmp_path, ["rttm"])
    annotation = load_rttm(str(path))["panel"]
    got = sorted((round(s.start, 3), round(s.end, 3), label) for s, _, label in annotation.itertracks(yield_label=True))
    want = sorted((t.start, t.end, t.speaker.replace(" ", "_")) for t in transcript.turns)
    assert got == want  # overlapping turns kept, names RTTM-safe


def test_rttm_without_turns_uses_segments(tmp_path, transcript):
    from pyannote.database.util import load_rttm

    (path,) = write_transcript(transcript.with_changes(turns=(), episode="my episode"), tmp_path, ["rttm"])
    annotation = load_rttm(str(path))["my_episode"]
    assert len(annotation) == len(transcript.segments)
    assert annotation.labels() == ["Amin_Mudaqiq", "Bruce_Pannier", "Muhammad_Tahir"]
    assert path.name == "my episode.rttm"


def test_podcast_namespace_json(tmp_path, transcript):
    (path,) = write_transcript(transcript, tmp_path, ["podcast"])
    assert path.name == "panel.podcast.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["version"] == "1.0.0"
    assert [set(s) for s in doc["segments"]] == [{"speaker", "startTime", "endTime", "body"}] * 4
    first = doc["segments"][0]
    assert first == {"speaker": "Muhammad Tahir", "startTime": 0.5, "endTime": round(transcript.segments[0].end, 3),
                     "body": "Welcome to our majlis."}
    assert [s["body"] for s in doc["segments"]] == [s.text for s in transcript.segments]


def test_all_formats_and_stem(tmp_path, transcript):
    written = write_transcript(transcript, tmp_path, parse_formats("all"), stem="renamed")
    assert sorted(p.name for p in written) == sorted(
        f"renamed.{e}" for e in ("json", "srt", "vtt", "txt", "tsv", "rttm", "podcast.json", "html", "docx"))
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in written)
    for bad in ("", "..", "a/b"):
        with pytest.raises(UsageError):
            write_transcript(transcript, tmp_path, ["json"], stem=bad)


def test_segment_without_words_still_gets_timed_cues(tmp_path, transcript):
    import webvtt

    bare = Segment(0, "Bruce Pannier", 10.0, 20.0, LONG)
    (path,) = write_transcript(transcript.with_changes(segments=(bare,)), tmp_path, ["vtt"])
    captions = list(webvtt.read(str(path)))
    assert len(captions) > 1 and captions[0].start == "00:00:10.000" and captions[-1].end == "00:00:20.000"
    assert " ".join(html.unescape(c.text.replace("\n", " ")) for c in captions) == LONG


def test_a_failing_writer_leaves_old_files_untouched_and_no_temp_files(tmp_path, transcript, monkeypatch):
    write_transcript(transcript, tmp_path, ["json", "srt"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    class Broken(Writer):
        name, extension = "broken", "broken"

        def format(self, transcript, options=None):
            raise RuntimeError("disk on fire")

    monkeypatch.setitem(WRITERS, "broken", Broken())
    changed = transcript.with_changes(segments=transcript.segments[:1])
    with pytest.raises(RuntimeError):
        write_transcript(changed, tmp_path, ["json", "srt", "broken"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_crash_during_the_write_itself_keeps_the_previous_file(tmp_path, transcript, monkeypatch):
    (path,) = write_transcript(transcript, tmp_path, ["json"])
    before = path.read_bytes()

    def fsync_fails(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync_fails)
    with pytest.raises(OutputError, match=f"{tmp_path}: cannot write there .No space left on device: free some"):
        write_transcript(transcript.with_changes(segments=()), tmp_path, ["json"])
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["panel.json"]
    assert path.read_bytes() == before


@pytest.mark.parametrize("fail_at", range(9))
def test_the_set_of_exports_is_replaced_all_together_or_not_at_all(tmp_path, transcript, monkeypatch, fail_at):
    from majlis.export.writers import WRITERS

    written = write_transcript(transcript, tmp_path, ["all"])
    assert len(written) == len(WRITERS) == 9
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_fsync, calls = os.fsync, []

    def disk_fills(fd):  # the disk fills while the fail_at-th file of nine is written
        calls.append(fd)
        if len(calls) == fail_at + 1:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_fills)
    with pytest.raises(OutputError):
        write_transcript(transcript.with_changes(segments=transcript.segments[:1]), tmp_path, ["all"])
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # every old file, no temp left


def test_cues_spread_text_evenly_instead_of_leaving_a_widow():
    from majlis.export.writers import cues

    seventeen = seg(0, "A", " ".join(["word"] * 17), 0.0)  # greedy 42-char lines: 8 + 8 words, then 1 alone
    got = [lines for _, _, lines in cues(seventeen)]
    assert [[len(line.split()) for line in lines] for lines in got] == [[6, 6], [5]]
    short = seg(0, "A", "Welcome to our majlis.", 0.0)
    assert cues(short) == [(0.0, pytest.approx(short.end), ["Welcome to our majlis."])]  # one cue, one line
