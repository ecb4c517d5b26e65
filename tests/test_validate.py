"""Transcript files are untrusted: every hand-broken one is one line naming the file, the JSON path and the
rule (exit 2) through `index` and `rename`, and what majlis itself writes still loads."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import fastjsonschema
import pytest

from majlis.errors import TranscriptError
from majlis.files import read_transcript, transcript_json
from majlis.types import Damage, Segment, Transcript, Turn, Word
from majlis.validate import NESTING, schema
from test_index import truth_transcript


def rich() -> Transcript:
    words = (Word("Hello", 0.5, 0.9, "Tahir", 0.91), Word("there.", 0.9, 1.4, "Tahir", 0.5))
    return Transcript("ep", "ep.mp3", 3.0, "en", {"asr": "x"}, ("Tahir", "Unknown 1"),
                      (Segment(0, "Tahir", 0.5, 1.4, "Hello there.", words),
                       Segment(1, "Unknown 1", 1.6, 2.2, "Yes.", (Word("Yes.", 1.6, 2.2, "Unknown 1"),))),
                      (Turn("Tahir", 0.4, 1.5), Turn("Unknown 1", 1.5, 3.0)), {"Tahir": 0.93},
                      {"title": "T", "date": "2020-01-01"}, Damage(2, "Header missing", 0.145))


def good() -> dict:
    return json.loads(transcript_json(rich()))


def test_what_majlis_writes_follows_the_published_schema(tmp_path):
    validate = fastjsonschema.compile(schema())
    for t in (rich(), truth_transcript()):
        data = json.loads(transcript_json(t))
        validate(data)
        p = tmp_path / f"{t.episode}.json"
        p.write_text(transcript_json(t))
        assert read_transcript(p) == Transcript.from_dict(data)
    assert schema()["title"] == "majlis.transcript/1"


def _set(path: str, value):
    def change(root):
        d = root
        *parents, last = path.split(".")
        for k in parents:
            d = d[int(k)] if k.isdigit() else d[k]
        if value is _DELETE:
            del d[last]
        else:
            d[int(last) if last.isdigit() else last] = value
        return root
    return change


_DELETE = object()
NAN, INF = float("nan"), float("inf")

# (what is broken, change, JSON path in the message, words of the rule)
BROKEN = [
    ("NaN duration", _set("duration", NAN), "$.duration", "finite"),
    ("Infinity start", _set("segments.0.start", INF), "$.segments[0].start", "finite"),
    ("negative time", _set("segments.0.start", -1.0), "$.segments[0].start", "minimum"),
    ("string time", _set("segments.0.words.0.end", "1.0"), "$.segments[0].words[0].end", "number"),
    ("string probability", _set("segments.0.words.0.probability", "high"), "$.segments[0].words[0].probability",
     "number"),
    ("string score", _set("speaker_scores.Tahir", "0.9"), "$.speaker_scores.Tahir", "number"),
    ("speakers a string", _set("speakers", "Tahir"), "$.speakers", "array"),
    ("speakers not names", _set("speakers", [1, None, {"a": 1}]), "$.speakers[0]", "string"),
    ("a dict as speaker", _set("segments.0.speaker", {"name": "x"}), "$.segments[0].speaker", "string"),
    ("null speaker", _set("segments.1.speaker", None), "$.segments[1].speaker", "string"),
    ("empty episode", _set("episode", ""), "$.episode", "pattern"),
    ("blank episode", _set("episode", "  "), "$.episode", "pattern"),
    ("missing segments", _set("segments", _DELETE), "$", "segments"),
    ("end before start", _set("segments.0.end", 0.2), "$.segments[0]", "before it starts"),
    ("segments out of order", _set("segments.1.start", 0.1), "$.segments[1].start", "time order"),
    ("past the duration", _set("turns.1.end", 9.0), "$.turns[1]", "outside the recording"),
    ("word outside its segment", _set("segments.0.words.1.end", 1.9), "$.segments[0].words[1]", "its segment"),
    ("words out of order", lambda d: _set("segments.0.words.0.end", 1.0)(_set("segments.0.words.0.start", 0.95)(d)),
     "$.segments[0].words[1]", "time order"),
    ("probability above 1", _set("segments.0.words.0.probability", 3), "probability", "maximum"),
    ("metadata not text", _set("metadata.title", ["x"]), "$.metadata.title", "string"),
    ("wrong schema", _set("schema", "other/1"), "$.schema", "not a majlis.transcript/1"),
    ("damage without its errors", _set("damage.errors", _DELETE), "$.damage", "errors"),
]


@pytest.mark.parametrize("what,change,where,rule", BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_transcript_is_one_error_naming_the_path_and_rule(tmp_path, what, change, where, rule):
    p = tmp_path / "broken.json"
    p.write_text(json.dumps(change(good())))  # json writes NaN and Infinity as Python reads them
    with pytest.raises(TranscriptError) as e:
        read_transcript(p)
    message = str(e.value)
    assert message.startswith(f"{p}: ") and where in message and rule.lower() in message.lower(), message


def test_overflowing_numbers_and_deep_nesting(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(transcript_json(rich()).replace('"duration": 3.0', '"duration": 1e400'))
    with pytest.raises(TranscriptError, match=r"\$\.duration: not a finite number"):
        read_transcript(p)
    p.write_text('{"schema": "majlis.transcript/1", "x": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(TranscriptError, match=re.escape(NESTING)):
        read_transcript(p)
    p.write_text("[1, 2]")
    with pytest.raises(TranscriptError, match="not a majlis transcript"):
        read_transcript(p)


def majlis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "majlis", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("what,change,where,rule", BROKEN[::4], ids=[b[0] for b in BROKEN[::4]])
def test_index_and_rename_refuse_them_in_one_line_and_write_nothing(tmp_path, what, change, where, rule):
    from majlis.search.index import Index

    p = tmp_path / "broken.json"
    p.write_text(json.dumps(change(good())))
    before = p.read_bytes()
    Index(tmp_path / "existing", create=True).close()  # rename checks its --index first: give it one
    index_files = sorted((tmp_path / "existing").iterdir())
    for args in (["index", str(p), "--index", str(tmp_path / "ix")],
                 ["rename", str(p), "Tahir=Muhammad", "--index", str(tmp_path / "existing")]):
        proc = majlis(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert str(p) in lines[0] and where in lines[0], lines[0]
    assert p.read_bytes() == before and not (tmp_path / "ix").exists()
    assert sorted((tmp_path / "existing").iterdir()) == index_files
