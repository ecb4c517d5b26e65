"""The transcript editor (`majlis serve --edit`): the pure edit operations and undo, saving one edit as one
change (transcript, exports, index, history), a kill -9 at any point of a save, the 409 of a stale save,
the 403s of a save without the token or from another origin, and transcribe/batch refusing to overwrite
corrections."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from majlis import edits
from majlis.edits import Conflict, EditError, Stale
from majlis.files import read_transcript, transcript_json
from majlis.search.index import Index
from majlis.types import Segment, Transcript, Turn, Word
from majlis.export.writers import parse_formats, write_transcript

SRC = Path(__file__).resolve().parents[1] / "src"


def seg(i: int, speaker: str, text: str, start: float) -> Segment:
    words = tuple(Word(w, start + k * 0.4, start + k * 0.4 + 0.3, speaker, 0.9, 0.8)
                  for k, w in enumerate(text.split()))
    return Segment(i, speaker, words[0].start, words[-1].end, text, words)


def panel() -> Transcript:
    return Transcript(
        "panel", "panel.mp3", 20.0, "en", {"asr": "truth"}, ("Tahir", "SPEAKER_01"),
        (seg(0, "Tahir", "Welcome to our majlis today.", 0.5), seg(1, "SPEAKER_01", "It began in Namangen.", 3.0),
         seg(2, "SPEAKER_01", "In nineteen ninety eight.", 6.0), seg(3, "Tahir", "Thank you both.", 9.0)),
        (Turn("Tahir", 0.4, 2.5), Turn("SPEAKER_01", 2.9, 8.0), Turn("Tahir", 8.9, 10.5)),
        {"Tahir": 0.74},
    )


def texts(t: Transcript) -> list[tuple[str, str]]:
    return [(s.speaker, s.text) for s in t.segments]


# -- the pure operations ---------------------------------------------------------------------------------

def test_fix_word_keeps_the_replaced_words_times():
    t = panel()
    new = edits.fix_word(t, 1, 3, "Namangan.")
    w_old, w_new = t.segments[1].words[3], new.segments[1].words[3]
    assert (w_new.word, w_new.start, w_new.end, w_new.speaker) == ("Namangan.", w_old.start, w_old.end, "SPEAKER_01")
    assert new.segments[1].text == "It began in Namangan."
    assert new.segments[0] == t.segments[0] and new.segments[2:] == t.segments[2:]


def test_several_words_typed_over_one_share_its_span_evenly():
    t = panel()
    old = t.segments[2].words[1]  # "nineteen"
    new = edits.fix_word(t, 2, 1, "nine teen")
    a, b = new.segments[2].words[1:3]
    assert (a.word, b.word) == ("nine", "teen")
    assert a.start == old.start and b.end == old.end
    assert a.end == pytest.approx(old.start + (old.end - old.start) / 2) == b.start
    assert new.segments[2].text == "In nine teen ninety eight."
    assert len(new.segments[2].words) == 5


def test_nothing_typed_removes_the_word():
    new = edits.fix_word(panel(), 0, 4, "")
    assert new.segments[0].text == "Welcome to our majlis"
    with pytest.raises(EditError):
        edits.fix_word(Transcript("x", "x.wav", 1, "en", {}, ("A",), (seg(0, "A", "one", 0),)), 0, 0, " ")


def test_reassign_three_words_splits_the_segment_around_them():
    t = panel()
    new = edits.reassign(t, [0, 1], [0, 3], "SPEAKER_01")
    assert texts(new)[:3] == [("Tahir", "Welcome"), ("SPEAKER_01", "to our majlis"), ("Tahir", "today.")]
    assert [s.id for s in new.segments] == list(range(6))
    moved = new.segments[1].words
    assert [w.speaker for w in moved] == ["SPEAKER_01"] * 3
    assert [(w.start, w.end) for w in moved] == [(w.start, w.end) for w in t.segments[0].words[1:4]]
    assert new.segments[0].start == t.segments[0].start and new.segments[2].end == t.segments[0].end
    assert new.turns == t.turns  # the diarizer's turns stay what it heard


def test_reassign_across_segments_and_to_a_new_name():
    new = edits.reassign(panel(), [1, 2], [2, 0], "Pannier")
    assert texts(new)[1:4] == [("SPEAKER_01", "It began"), ("Pannier", "in Namangen."), ("Pannier", "In")]
    assert new.speakers == ("Tahir", "SPEAKER_01", "Pannier")
    with pytest.raises(EditError):
        edits.reassign(panel(), [2, 0], [1, 2], "Pannier")  # backwards
    with pytest.raises(EditError):
        edits.reassign(panel(), [0, 9], [0, 10], "Pannier")  # no such word


def test_split_and_merge():
    t = panel()
    split = edits.split(t, 0, 2)
    assert texts(split)[:2] == [("Tahir", "Welcome to"), ("Tahir", "our majlis today.")]
    assert split.segments[0].start == t.segments[0].start and split.segments[1].end == t.segments[0].end
    merged = edits.merge(split, 0)
    assert texts(merged) == texts(t)
    assert merged.segments[0].words == t.segments[0].words
    with pytest.raises(EditError, match="different speakers"):
        edits.merge(t, 0)
    with pytest.raises(EditError):
        edits.split(t, 0, 0)
    assert texts(edits.merge(t, 1))[1] == ("SPEAKER_01", "It began in Namangen. In nineteen ninety eight.")


def test_rename_speaker_everywhere():
    new = edits.rename_speaker(panel(), "SPEAKER_01", "Bruce Pannier")
    assert {s.speaker for s in new.segments} == {"Tahir", "Bruce Pannier"}
    assert all(w.speaker != "SPEAKER_01" for w in new.words)
    assert [x.speaker for x in new.turns] == ["Tahir", "Bruce Pannier", "Tahir"]
    with pytest.raises(EditError, match="no speaker"):
        edits.rename_speaker(panel(), "Nobody", "X")


def test_apply_checks_the_operation():
    with pytest.raises(EditError, match="op"):
        edits.apply(panel(), {"op": "delete_everything"})
    with pytest.raises(EditError, match="missing text"):
        edits.apply(panel(), {"op": "fix_word", "seg": 0, "word": 0})
    with pytest.raises(EditError, match="segment"):
        edits.apply(panel(), {"op": "fix_word", "seg": "0", "word": 0, "text": "x"})


@pytest.mark.parametrize("op", [
    {"op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."},
    {"op": "fix_word", "seg": 2, "word": 1, "text": "nine teen"},
    {"op": "reassign", "start": [0, 1], "end": [0, 3], "speaker": "SPEAKER_01"},
    {"op": "reassign", "start": [1, 2], "end": [2, 0], "speaker": "New"},
    {"op": "split", "seg": 2, "word": 2},
    {"op": "merge", "seg": 1},
    {"op": "rename_speaker", "old": "SPEAKER_01", "new": "Tahir"},  # a merge of two speakers
])
def test_undo_restores_exactly(op):
    t = read_back(panel())
    new = read_back(edits.apply(t, op))
    before, after = edits.diff(t, new)
    record = {"id": 1, "op": op["op"], "before": json.loads(json.dumps(before)), "after": json.loads(json.dumps(after))}
    assert transcript_json(edits.undo(new, record)) == transcript_json(t)


def test_undo_refuses_when_the_edit_is_no_longer_there():
    t = read_back(panel())
    new = read_back(edits.fix_word(t, 1, 3, "Namangan."))
    before, after = edits.diff(t, new)
    changed = edits.fix_word(new, 1, 3, "Andijan.")
    with pytest.raises(Conflict):
        edits.undo(changed, {"id": 1, "op": "fix_word", "before": before, "after": after})


def read_back(t: Transcript) -> Transcript:
    return Transcript.from_dict(json.loads(transcript_json(t)))


# -- saving ----------------------------------------------------------------------------------------------

@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    write_transcript(panel(), folder, parse_formats("all"))
    return folder


@pytest.fixture
def indexed(out: Path):
    index = Index(out.parent / "index", create=True)
    index.add([read_transcript(out / "panel.json")], transcript_paths={"panel": out / "panel.json"})
    yield index
    index.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def exports(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(folder).items() if not k.endswith(edits.HISTORY_SUFFIX)}


def test_save_writes_transcript_exports_index_and_history_as_one(out, indexed):
    path = out / "panel.json"
    v0 = edits.current_version(path)
    r = edits.save(path, {"op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."}, version=v0, who="amina",
                   index=indexed)
    assert r["version"] == edits.current_version(path) != v0
    assert "Namangan." in read_transcript(path).segments[1].text
    for ext in ("srt", "vtt", "txt", "tsv", "html"):
        assert "Namangan." in (out / f"panel.{ext}").read_text(encoding="utf-8"), ext
        assert "Namangen" not in (out / f"panel.{ext}").read_text(encoding="utf-8"), ext
    assert [h.episode for h in indexed.search("Namangan")] == ["panel"]
    assert indexed.search("Namangen") == []
    [line] = edits.read_history(path)
    assert line["who"] == "amina" and line["op"] == "fix_word" and line["version_before"] == v0
    assert line["before"]["segments"][0]["text"] == "It began in Namangen."
    assert line["after"]["segments"][0]["text"] == "It began in Namangan."
    assert not list(out.glob(".*.rename"))

    # undo: the files are back, byte for byte, except the history, which only grows
    r2 = edits.save(path, {"op": "undo"}, version=r["version"], who="amina", index=indexed)
    assert r2["version"] == v0
    assert [h.episode for h in indexed.search("Namangen")] == ["panel"]
    history = edits.read_history(path)
    assert [(h["id"], h["op"], h.get("undoes")) for h in history] == [(1, "fix_word", None), (2, "undo", 1)]
    assert edits.undo_stack(history) == []
    with pytest.raises(EditError, match="nothing to undo"):
        edits.save(path, {"op": "undo"}, version=v0, who="amina", index=indexed)


def test_undo_goes_back_one_edit_at_a_time(out):
    path = out / "panel.json"
    start = snapshot(out)
    v = edits.current_version(path)
    v = edits.save(path, {"op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."}, version=v, who="a")["version"]
    after_one = exports(out)
    v = edits.save(path, {"op": "reassign", "start": [0, 1], "end": [0, 3], "speaker": "SPEAKER_01"}, version=v,
                   who="b")["version"]
    v = edits.save(path, {"op": "undo"}, version=v, who="a")["version"]
    assert exports(out) == after_one
    v = edits.save(path, {"op": "undo"}, version=v, who="a")["version"]
    assert exports(out) == {k: v for k, v in start.items()}


def test_a_stale_save_is_refused_and_nothing_changes(out):
    path = out / "panel.json"
    v0 = edits.current_version(path)
    edits.save(path, {"op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."}, version=v0, who="first")
    before = snapshot(out)
    with pytest.raises(Stale, match="reload"):
        edits.save(path, {"op": "fix_word", "seg": 0, "word": 0, "text": "Hello"}, version=v0, who="second")
    assert snapshot(out) == before


class Killed(BaseException):
    """Stands for a kill -9: nothing in majlis catches it."""


def test_a_save_killed_at_any_point_is_all_before_or_all_after(out, tmp_path, monkeypatch):
    import majlis.export.rename as rn

    op = {"op": "reassign", "start": [0, 1], "end": [0, 3], "speaker": "SPEAKER_01"}

    def setup(name: str):
        work = tmp_path / name
        shutil.copytree(out, work)
        index = Index(tmp_path / f"{name}-index", create=True)
        index.add([read_transcript(work / "panel.json")], transcript_paths={"panel": work / "panel.json"})
        return work, index

    def state(work: Path, index: Index):
        return snapshot(work), sorted((h.speaker, h.text) for h in index.search("majlis OR welcome OR today"))

    clean, clean_index = setup("clean")
    before = state(clean, clean_index)
    edits.save(clean / "panel.json", op, version=edits.current_version(clean / "panel.json"), who="t",
               index=clean_index, now=FIXED)
    after = state(clean, clean_index)
    assert before != after
    real_write, real_bytes, real_add = rn.atomic_write_text, rn.atomic_write_bytes, Index.add
    outcomes = set()
    kill_at = 0
    while True:
        work, index = setup(f"kill{kill_at}")
        calls = []

        def counted(fn):
            def wrapper(*a, **k):
                calls.append(fn)
                if len(calls) - 1 == kill_at:
                    raise Killed()
                return fn(*a, **k)
            return wrapper

        monkeypatch.setattr(rn, "atomic_write_text", counted(real_write))
        monkeypatch.setattr(rn, "atomic_write_bytes", counted(real_bytes))
        monkeypatch.setattr(Index, "add", counted(real_add))
        try:
            edits.save(work / "panel.json", op, version=edits.current_version(work / "panel.json"), who="t",
                       index=index, now=FIXED)
            finished = True
        except Killed:
            finished = False
        monkeypatch.setattr(rn, "atomic_write_text", real_write)
        monkeypatch.setattr(rn, "atomic_write_bytes", real_bytes)
        monkeypatch.setattr(Index, "add", real_add)
        # What `serve --edit` does at start and before any save: complete what the journal decided.
        from majlis.web.editor import finish_all

        finish_all(index)
        got = state(work, index)
        assert got in (before, after), kill_at
        outcomes.add("after" if got == after else "before")
        index.close()
        if finished:
            break
        kill_at += 1
    assert kill_at >= 10 and outcomes == {"before", "after"}  # every write and the index commit were hit
    clean_index.close()


FIXED = __import__("datetime").datetime(2026, 1, 2, 3, 4, 5, tzinfo=__import__("datetime").timezone.utc)

KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import majlis.export.rename as rn
    from majlis import edits
    from majlis.search.index import Index
    from datetime import datetime, timezone
    work, index_dir, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    calls = [0]
    def counted(fn):
        def wrapper(*a, **k):
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            calls[0] += 1
            return fn(*a, **k)
        return wrapper
    rn.atomic_write_text = counted(rn.atomic_write_text)
    rn.atomic_write_bytes = counted(rn.atomic_write_bytes)
    Index.add = counted(Index.add)
    index = Index(index_dir)
    op = {"op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."}
    edits.save(work / "panel.json", op, version=edits.current_version(work / "panel.json"), who="t", index=index,
               now=datetime(2026, 1, 2, tzinfo=timezone.utc))
    print("finished")
""")


@pytest.mark.slow
def test_a_real_sigkill_during_a_save_then_serve_edit_completes_it(out, tmp_path):
    """A real process killed with SIGKILL inside the save, at three points: before the journal, among the
    exports, before the index commit; then `majlis serve --edit`'s start completes what was decided."""
    from majlis.web.editor import finish_all

    results = {}
    for kill_at in (0, 4, 11):
        work = tmp_path / f"k{kill_at}"
        shutil.copytree(out, work)
        index_dir = tmp_path / f"k{kill_at}-index"
        with Index(index_dir, create=True) as index:
            index.add([read_transcript(work / "panel.json")], transcript_paths={"panel": work / "panel.json"})
        before = exports(work)
        p = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(work), str(index_dir), str(kill_at)],
                           env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=120)
        assert p.returncode == -signal.SIGKILL, p.stderr
        with Index(index_dir) as index:
            finish_all(index)
            found = [h.episode for h in index.search("Namangan")]
            stale = [h.episode for h in index.search("Namangen")]
        now = exports(work)
        fixed = "Namangan." in (work / "panel.json").read_text()
        for name, data in now.items():
            if b"Namangen." not in before[name]:  # the RTTM has no words; the DOCX is zipped
                continue
            assert (b"Namangan." in data) == fixed, (kill_at, name)
            assert (b"Namangen." in data) != fixed, (kill_at, name)
        assert (found, stale) == ((["panel"], []) if fixed else ([], ["panel"])), kill_at
        assert (now == before) != fixed
        assert len(edits.read_history(work / "panel.json")) == int(fixed)
        results[kill_at] = fixed
    assert results == {0: False, 4: True, 11: True}


# -- the web routes --------------------------------------------------------------------------------------

TOKEN = "test-token-123456"


@pytest.fixture
def client(out, indexed):
    from majlis.web.app import create_app
    from majlis.web.editor import EditSettings

    saved = []

    def on_saved(episode, path, record):
        saved.append((episode, path.name, record["op"]))
        return {"learn": record["args"].get("new")} if record["op"] == "rename_speaker" else None

    app = create_app(indexed, editor=EditSettings(token=TOKEN, names=lambda: ["Library Person"], who="tester",
                                                  on_saved=on_saved))
    app.state.saved = saved
    return TestClient(app, base_url="http://127.0.0.1:8000")


def post(client, body, **headers):
    h = {"X-Majlis-Edit-Token": TOKEN, "Origin": "http://127.0.0.1:8000", **headers}
    h = {k: v for k, v in h.items() if v is not None}
    return client.post("/api/edit/panel", content=json.dumps(body), headers=h)


def test_the_page_carries_what_the_editor_needs(client, out):
    html = client.get("/episode/panel").text
    assert "/static/editor.js" in html and 'data-i="3"' in html
    info = client.get("/api/edit/panel").json()
    assert info["version"] == edits.current_version(out / "panel.json")
    assert info["names"] == ["Library Person"] and info["undo"] is None
    assert "Tahir" in info["speakers"]


def test_read_only_without_edit(indexed):
    from majlis.web.app import create_app

    plain = TestClient(create_app(indexed))
    assert "editor.js" not in plain.get("/episode/panel").text
    assert plain.post("/api/edit/panel", content="{}").status_code in (404, 405)
    assert plain.get("/api/edit/panel").status_code == 404


def test_a_save_through_the_api(client, out, indexed):
    v = client.get("/api/edit/panel").json()["version"]
    r = post(client, {"version": v, "op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == edits.current_version(out / "panel.json")
    assert edits.read_history(out / "panel.json")[0]["who"] == "tester"
    assert client.get("/api/search", params={"q": "Namangan"}).json()[0]["episode"] == "panel"
    assert client.get("/api/edit/panel").json()["undo"] == "fix word 'Namangen.' -> 'Namangan.'"
    assert len(client.get("/api/edit/panel/history").json()) == 1


def test_the_second_save_of_a_stale_version_gets_409(client, out):
    v = client.get("/api/edit/panel").json()["version"]
    assert post(client, {"version": v, "op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."}).status_code == 200
    before = snapshot(out)
    r = post(client, {"version": v, "op": "fix_word", "seg": 0, "word": 0, "text": "Hello"})
    assert r.status_code == 409 and "reload" in r.json()["error"]
    assert snapshot(out) == before


@pytest.mark.parametrize("headers", [
    {"X-Majlis-Edit-Token": None},
    {"X-Majlis-Edit-Token": "wrong-token-123456"},
    {"X-Majlis-Edit-Token": ""},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:8001"},
    {"Origin": None, "Sec-Fetch-Site": "cross-site"},
])
def test_saves_without_the_token_or_from_another_origin_get_403(client, out, headers):
    v = client.get("/api/edit/panel").json()["version"]
    before = snapshot(out)
    r = post(client, {"version": v, "op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."}, **headers)
    assert r.status_code == 403, r.text
    assert snapshot(out) == before


def test_a_save_without_origin_but_with_the_token_is_accepted(client):
    v = client.get("/api/edit/panel").json()["version"]  # curl sends no Origin
    assert post(client, {"version": v, "op": "merge", "seg": 1}, Origin=None).status_code == 200


@pytest.mark.parametrize("body, status", [
    ({"op": "fix_word"}, 400),
    ({"version": "x", "op": "fix_word", "seg": 1, "word": 3, "text": "y"}, 409),
    ({"version": None, "op": "nope"}, 400),
])
def test_bad_saves(client, body, status):
    if body.get("version") is None and "version" in body:
        body["version"] = client.get("/api/edit/panel").json()["version"]
    assert post(client, body).status_code == status


# -- transcribe and batch do not overwrite corrections ---------------------------------------------------

def test_refuse_if_edited(out):
    path = out / "panel.json"
    edits.refuse_if_edited(path, force=False)  # no history: fine
    v = edits.current_version(path)
    v = edits.save(path, {"op": "split", "seg": 0, "word": 2}, version=v, who="t")["version"]
    with pytest.raises(edits.UsageError, match="--force"):
        edits.refuse_if_edited(path, force=False)
    edits.refuse_if_edited(path, force=True)
    edits.save(path, {"op": "undo"}, version=v, who="t")
    edits.refuse_if_edited(path, force=False)  # every edit undone: nothing to lose


def _corrected(folder: Path, episode: str) -> None:
    """`episode`'s transcript in `folder`, with one edit saved."""
    t = panel().with_changes(episode=episode)
    write_transcript(t, folder, parse_formats("json"))
    path = folder / f"{episode}.json"
    edits.save(path, {"op": "split", "seg": 0, "word": 2}, version=edits.current_version(path), who="t")


def test_transcribe_refuses_to_overwrite_a_corrected_transcript(tmp_path):
    from click.testing import CliRunner

    from majlis.cli import main

    out = tmp_path / "out"
    _corrected(out, "panel")
    before = snapshot(out)
    audio = Path(__file__).resolve().parents[1] / "audio" / "panel.mp3"
    r = CliRunner().invoke(main, ["transcribe", str(audio), "--out", str(out), "--asr", "sphinx"])
    assert r.exit_code == 2, r.output
    assert "--force" in r.output and "panel.edits.jsonl" in r.output and len(r.output.strip().splitlines()) == 1
    assert snapshot(out) == before


class _Inline:
    """An executor that 'transcribes' each file at once into <episode>.json."""

    def __init__(self, settings, on_event):
        self.out = Path(settings.out_dir)

    def submit(self, fn, task, *rest):
        from concurrent.futures import Future

        from majlis.batch.worker import FileResult

        write_transcript(panel().with_changes(episode=task.episode), self.out, parse_formats("json"))
        f = Future()
        f.set_result(FileResult(task.episode, True, sha256="0", duration=1.0, transcript_key="k",
                                outputs=(f"{task.episode}.json",)))
        return f

    def wait_any(self, futures, timeout):
        return {f for f in futures if f.done()}

    def close(self, *, cancel=False):
        pass


def test_batch_refuses_to_redo_a_corrected_episode_without_force(tmp_path):
    from majlis.batch import run_batch

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.wav").write_bytes(b"x")
    out = tmp_path / "out"
    assert run_batch([src], out, executor_factory=_Inline).done == 1
    path = out / "a.json"
    edits.save(path, {"op": "split", "seg": 0, "word": 2}, version=edits.current_version(path), who="t")
    corrected = path.read_bytes()
    assert run_batch([src], out, executor_factory=_Inline).skipped == 1  # nothing to redo: nothing refused
    with pytest.raises(edits.UsageError, match="--force"):  # other formats: a new plan would redo it
        run_batch([src], out, formats=("json", "srt"), executor_factory=_Inline)
    assert path.read_bytes() == corrected
    assert run_batch([src], out, formats=("json", "srt"), force=True, executor_factory=_Inline).done == 1
    assert path.read_bytes() != corrected


@pytest.mark.slow
def test_serve_edit_prints_the_token_completes_interrupted_saves_and_guards_posts(out, tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    import majlis.export.rename as rn

    index_dir = tmp_path / "index"
    with Index(index_dir, create=True) as index:
        index.add([read_transcript(out / "panel.json")], transcript_paths={"panel": out / "panel.json"})
        real = rn.atomic_write_bytes

        def die_after_one(path, data):  # a save killed among its exports
            monkeypatch.setattr(rn, "atomic_write_bytes", lambda *a: (_ for _ in ()).throw(Killed()))
            return real(path, data)

        monkeypatch.setattr(rn, "atomic_write_bytes", die_after_one)
        with pytest.raises(Killed):
            edits.save(out / "panel.json", {"op": "fix_word", "seg": 1, "word": 3, "text": "Namangan."},
                       version=edits.current_version(out / "panel.json"), who="t", index=index)
        monkeypatch.setattr(rn, "atomic_write_bytes", real)
    assert (out / ".panel.json.rename").exists()
    proc = subprocess.Popen([sys.executable, "-m", "majlis", "serve", "--index", str(index_dir), "--port", "0",
                             "--edit-token", TOKEN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"})
    try:
        serving, editing = proc.stdout.readline(), proc.stdout.readline()
        assert "serving 1 episode" in serving, (serving, proc.stderr.read() if proc.poll() is not None else "")
        url = serving.split(" at ")[1].split()[0].rstrip("/")
        assert url.startswith("http://127.0.0.1:")  # still loopback only
        assert "editing is on" in editing and f"{url}/#edit={TOKEN}" in editing
        # the interrupted save was completed before serving
        assert not (out / ".panel.json.rename").exists()
        assert "Namangan." in (out / "panel.srt").read_text() and "Namangan." in (out / "panel.json").read_text()

        def call(headers: dict, body: dict) -> tuple[int, dict]:
            req = urllib.request.Request(url + "/api/edit/panel", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", **headers})
            try:
                with urllib.request.urlopen(req, timeout=20) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        with urllib.request.urlopen(url + "/api/edit/panel", timeout=20) as r:
            version = json.loads(r.read())["version"]
        op = {"version": version, "op": "merge", "seg": 1}
        assert call({}, op)[0] == 403
        assert call({"X-Majlis-Edit-Token": TOKEN, "Origin": "http://evil.example"}, op)[0] == 403
        status, body = call({"X-Majlis-Edit-Token": TOKEN, "Origin": url}, op)
        assert status == 200 and body["edit"]["op"] == "merge"
        status, body = call({"X-Majlis-Edit-Token": TOKEN}, op)  # the same version again
        assert status == 409 and "reload" in body["error"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def test_the_library_hooks_names_and_on_saved(client):
    v = client.get("/api/edit/panel").json()["version"]
    r = post(client, {"version": v, "op": "rename_speaker", "old": "SPEAKER_01", "new": "Bruce Pannier"})
    assert r.status_code == 200 and r.json()["offer"] == {"learn": "Bruce Pannier"}
    assert client.app.state.saved == [("panel", "panel.json", "rename_speaker")]
    assert "Library Person" in client.get("/api/edit/panel").json()["names"]


def test_the_voice_library_wired_to_the_editor(out, indexed, tmp_path):
    from majlis.voices import VoiceLibrary
    from majlis.web.app import create_app
    from majlis.web.editor import EditSettings, with_library

    library = VoiceLibrary(tmp_path / "voices")
    library.add("Bruce Pannier", [{"source": "clip.wav", "seconds": 3.0, "embedding": [1.0] + [0.0] * 255}])
    c = TestClient(create_app(indexed, editor=with_library(EditSettings(token=TOKEN), library)),
                   base_url="http://127.0.0.1:8000")
    assert "Bruce Pannier" in c.get("/api/edit/panel").json()["names"]

    def save(op: dict):
        r = post(c, {"version": c.get("/api/edit/panel").json()["version"], **op})
        assert r.status_code == 200, r.text
        return r.json()["offer"]

    # a name the library knows, or a placeholder, is not offered; a new name is
    assert save({"op": "rename_speaker", "old": "SPEAKER_01", "new": "Bruce Pannier"}) is None
    assert save({"op": "reassign", "start": [0, 0], "end": [0, 1], "speaker": "Unknown 3"}) is None
    assert save({"op": "rename_speaker", "old": "Tahir", "new": "Muhammad Tahir"}) == {"learn": "Muhammad Tahir"}

    learn = {"speaker": "Muhammad Tahir"}
    r = c.post("/api/edit/panel/learn", content=json.dumps(learn), headers={"Origin": "http://127.0.0.1:8000"})
    assert r.status_code == 403  # no token
    r = post_to(c, "/api/edit/panel/learn", learn)
    assert r.status_code == 400 and "not learned" in r.json()["error"] and "panel.mp3" in r.json()["error"]
    assert [p.name for p in library.people()] == ["Bruce Pannier"]  # nothing learned

    plain = TestClient(create_app(indexed, editor=EditSettings(token=TOKEN)), base_url="http://127.0.0.1:8000")
    r = post_to(plain, "/api/edit/panel/learn", learn)
    assert r.status_code == 400 and "no voice library" in r.json()["error"]


def post_to(client, url: str, body: dict):
    return client.post(url, content=json.dumps(body),
                       headers={"X-Majlis-Edit-Token": TOKEN, "Origin": "http://127.0.0.1:8000"})


def test_serve_voices_goes_with_edit(indexed, tmp_path):
    r = subprocess.run([sys.executable, "-m", "majlis", "serve", "--index", str(tmp_path / "index"), "--voices",
                        str(tmp_path / "voices")], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(SRC)})
    assert r.returncode == 2 and "--voices goes with --edit" in r.stderr and "Traceback" not in r.stderr
