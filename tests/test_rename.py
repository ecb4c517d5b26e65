"""`majlis rename` as users run it: a transcript and all its exports, renamed without any model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from majlis.cli import main
from majlis.files import read_transcript
from majlis.types import Segment, Transcript, Turn, Word
from majlis.export.writers import WRITERS, ExportOptions, parse_formats, relative_url, write_transcript

EXTS = ("json", "srt", "vtt", "txt", "tsv", "rttm", "podcast.json", "html", "docx")


def seg(i: int, speaker: str, text: str, start: float) -> Segment:
    words = tuple(Word(w, start + k * 0.4, start + k * 0.4 + 0.3, speaker) for k, w in enumerate(text.split()))
    return Segment(i, speaker, words[0].start, words[-1].end, text, words)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    t = Transcript(
        "panel", "panel.mp3", 20.0, "en", {"asr": "sphinx:en-us", "diarizer": "builtin:resemblyzer"},
        ("Bruce Pannier", "SPEAKER_00", "SPEAKER_01"),
        (seg(0, "SPEAKER_00", "Welcome to our majlis.", 0.5), seg(1, "Bruce Pannier", "It began in Namangan.", 3.0),
         seg(2, "SPEAKER_01", "In nineteen ninety eight.", 6.0), seg(3, "SPEAKER_00", "Thank you both.", 9.0)),
        (Turn("SPEAKER_00", 0.4, 2.5), Turn("Bruce Pannier", 2.9, 5.0), Turn("SPEAKER_01", 5.9, 8.0),
         Turn("SPEAKER_00", 8.9, 10.5)),
        {"Bruce Pannier": 0.74, "SPEAKER_01": 0.52},
    )
    write_transcript(t, tmp_path, parse_formats("all"))
    (tmp_path / "other.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nSPEAKER_00: not ours\n", encoding="utf-8")
    return tmp_path


def rename(*args: str):
    return CliRunner().invoke(main, ["rename", *args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_rename_rewrites_the_transcript_and_every_export(out, tmp_path_factory):
    r = rename(str(out / "panel.json"), "SPEAKER_00=Muhammad Tahir", " SPEAKER_01 = Mudaqiq ")
    assert r.exit_code == 0, r.output + r.stderr
    assert "SPEAKER_00 -> Muhammad Tahir" in r.stdout
    assert sorted(line.split("rewrote ", 1)[1] for line in r.stdout.splitlines() if line.startswith("rewrote")) == \
        sorted(str(out / f"panel.{e}") for e in EXTS)

    t = read_transcript(out / "panel.json")
    assert t.speakers == ("Bruce Pannier", "Muhammad Tahir", "Mudaqiq")
    assert [s.speaker for s in t.segments] == ["Muhammad Tahir", "Bruce Pannier", "Mudaqiq", "Muhammad Tahir"]
    assert all(w.speaker == s.speaker for s in t.segments for w in s.words)
    assert [x.speaker for x in t.turns] == ["Muhammad Tahir", "Bruce Pannier", "Mudaqiq", "Muhammad Tahir"]
    assert dict(t.speaker_scores) == {"Bruce Pannier": 0.74, "Mudaqiq": 0.52}
    assert [s.text for s in t.segments][0] == "Welcome to our majlis."

    for ext in EXTS[:-1]:  # docx is a zip: compared byte for byte below
        text = (out / f"panel.{ext}").read_text(encoding="utf-8")
        assert "SPEAKER_0" not in text, ext
    # Each export is exactly what writing the renamed transcript afresh gives.
    fresh = tmp_path_factory.mktemp("fresh")
    write_transcript(t, fresh, parse_formats("all"), options=ExportOptions(audio_url=relative_url(t.audio, out)))
    for ext in EXTS:
        assert (out / f"panel.{ext}").read_bytes() == (fresh / f"panel.{ext}").read_bytes(), ext
    assert "Muhammad_Tahir" in (out / "panel.rttm").read_text()
    assert "<v Muhammad Tahir>Welcome" in (out / "panel.vtt").read_text()
    assert "Muhammad Tahir: Welcome" in (out / "panel.srt").read_text()
    assert {s["speaker"] for s in json.loads((out / "panel.podcast.json").read_text())["segments"]} == {
        "Muhammad Tahir", "Bruce Pannier", "Mudaqiq"}
    assert "SPEAKER_00: not ours" in (out / "other.srt").read_text()  # another episode's file is left alone


def test_only_exports_that_exist_are_rewritten(out):
    (out / "panel.tsv").unlink()
    (out / "panel.podcast.json").unlink()
    r = rename(str(out / "panel.json"), "SPEAKER_00=Tahir")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.count("rewrote ") == len(EXTS) - 2
    assert not (out / "panel.tsv").exists() and not (out / "panel.podcast.json").exists()


def test_renaming_onto_an_existing_name_merges(out):
    r = rename(str(out / "panel.json"), "SPEAKER_01=Bruce Pannier")
    assert r.exit_code == 0, r.stderr
    t = read_transcript(out / "panel.json")
    assert t.speakers == ("Bruce Pannier", "SPEAKER_00")
    assert dict(t.speaker_scores) == {"Bruce Pannier": 0.74}  # the better voice match survives
    assert (out / "panel.txt").read_text().count("Bruce Pannier [") == 1  # consecutive turns became one paragraph


def test_swap_happens_at_once(out):
    r = rename(str(out / "panel.json"), "SPEAKER_00=SPEAKER_01", "SPEAKER_01=SPEAKER_00")
    assert r.exit_code == 0, r.stderr
    assert [s.speaker for s in read_transcript(out / "panel.json").segments] == [
        "SPEAKER_01", "Bruce Pannier", "SPEAKER_00", "SPEAKER_01"]


def assert_one_line(r, *needles: str) -> None:
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("majlis: error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("pairs, needles", [
    (["SPEAKER_07=Tahir"], ["'SPEAKER_07'", "Bruce Pannier, SPEAKER_00, SPEAKER_01"]),
    (["SPEAKER_00"], ["'SPEAKER_00'", "OLD=NEW"]),
    (["=Tahir"], ["OLD=NEW"]),
    (["SPEAKER_00="], ["OLD=NEW"]),
    (["SPEAKER_00=Tahir", "SPEAKER_00=Pannier"], ["renamed twice"]),
    ([], ["OLD=NEW"]),
])
def test_bad_pairs_exit_2_with_one_line_and_touch_nothing(out, pairs, needles):
    before = snapshot(out)
    assert_one_line(rename(str(out / "panel.json"), *pairs), *needles)
    assert snapshot(out) == before


def test_not_a_transcript_exits_2(out):
    assert_one_line(rename(str(out / "panel.podcast.json"), "SPEAKER_00=Tahir"), "panel.podcast.json", "schema")
    assert_one_line(rename(str(out), "SPEAKER_00=Tahir"), str(out))


def test_missing_file_through_the_real_command(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "majlis", "rename", str(tmp_path / "nope.json"), "A=B"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"majlis: error: {tmp_path / 'nope.json'}: no such file"]
    assert "Traceback" not in proc.stderr and not list(tmp_path.iterdir())


def test_every_registered_writer_is_covered():
    # If a format is added, rename must find its file: it looks for <stem>.<extension> of every writer.
    assert sorted(w.extension for w in WRITERS.values()) == sorted(EXTS)


def test_rename_with_index_makes_searches_find_the_new_name(out, tmp_path):
    from majlis.search.index import Index

    index_dir = tmp_path / "index"
    with Index(index_dir, create=True) as index:
        index.add([read_transcript(out / "panel.json")], transcript_paths={"panel": out / "panel.json"})
    r = rename(str(out / "panel.json"), "SPEAKER_01=Mudaqiq", "--index", str(index_dir))
    assert r.exit_code == 0, r.output
    with Index(index_dir) as index:
        hits = index.search("nineteen ninety", speakers=["Mudaqiq"])
        assert [h.speaker for h in hits] == ["Mudaqiq"]
        assert {s["speaker"] for s in index.speakers()} == {"Bruce Pannier", "SPEAKER_00", "Mudaqiq"}
        assert [e["episode"] for e in index.episodes()] == ["panel"]


class Killed(BaseException):
    """Stands for a kill -9: nothing in majlis catches it."""


def test_a_missing_index_is_found_before_anything_is_written(out, tmp_path):
    before = snapshot(out)
    r = rename(str(out / "panel.json"), "SPEAKER_01=Mudaqiq", "--index", str(tmp_path / "no-index"))
    assert r.exit_code == 2 and "no index" in r.output
    assert snapshot(out) == before


@pytest.mark.parametrize("with_index", [False, True])
def test_a_rename_killed_at_any_point_is_completed_by_running_it_again(out, tmp_path_factory, monkeypatch,
                                                                        with_index):
    import majlis.export.rename as rn
    from majlis.search.index import Index

    def indexed(folder: Path) -> Path:
        index_dir = folder.with_name(f"{folder.name}-index")
        with Index(index_dir, create=True) as index:
            index.add([read_transcript(folder / "panel.json")], transcript_paths={"panel": folder / "panel.json"})
        return index_dir

    def state(folder: Path, index_dir: Path | None):
        files = {k: v for k, v in snapshot(folder).items() if not k.startswith(".")}
        if index_dir is None:
            return files, None
        with Index(index_dir) as index:
            return files, sorted(s["speaker"] for s in index.speakers())

    args = ["SPEAKER_00=Muhammad Tahir", "SPEAKER_01=Bruce Pannier"]  # a rename and a merge
    tmp_path = tmp_path_factory.mktemp("kills")  # beside `out`, not inside it
    clean = tmp_path / "clean"
    shutil.copytree(out, clean)
    clean_index = indexed(clean) if with_index else None
    r = rename(str(clean / "panel.json"), *args, *(["--index", str(clean_index)] if with_index else []))
    assert r.exit_code == 0, r.output
    expected = state(clean, clean_index)

    real_write, real_write_bytes, real_add = rn.atomic_write_text, rn.atomic_write_bytes, Index.add
    steps = 1 + len([p for p in out.iterdir() if p.name.startswith("panel.") and p.name != "panel.json"]) + 1
    for kill_at in range(steps + with_index):
        work = tmp_path / f"kill{kill_at}"
        shutil.copytree(out, work)
        index_dir = indexed(work) if with_index else None
        calls = []

        def counted(fn):
            def wrapper(*a, **k):
                calls.append(fn)
                if len(calls) - 1 == kill_at:
                    raise Killed()
                return fn(*a, **k)
            return wrapper

        monkeypatch.setattr(rn, "atomic_write_text", counted(real_write))
        monkeypatch.setattr(rn, "atomic_write_bytes", counted(real_write_bytes))  # the exports (docx is binary)
        monkeypatch.setattr(Index, "add", counted(real_add))
        extra = ["--index", str(index_dir)] if with_index else []
        with pytest.raises(Killed):
            CliRunner().invoke(main, ["rename", str(work / "panel.json"), *args, *extra], catch_exceptions=False)
        monkeypatch.setattr(rn, "atomic_write_text", real_write)
        monkeypatch.setattr(rn, "atomic_write_bytes", real_write_bytes)
        monkeypatch.setattr(Index, "add", real_add)
        r = rename(str(work / "panel.json"), *args, *extra)  # the same command again
        assert r.exit_code == 0, (kill_at, r.output)
        assert state(work, index_dir) == expected, kill_at
        assert not (work / ".panel.json.rename").exists()


def test_an_interrupted_rename_must_be_finished_before_another(out, monkeypatch):
    import majlis.export.rename as rn

    real = rn.atomic_write_text

    def stop_after_json(path, text):
        real(path, text)
        if Path(path).name == "panel.json":
            raise Killed()

    monkeypatch.setattr(rn, "atomic_write_text", stop_after_json)
    with pytest.raises(Killed):
        CliRunner().invoke(main, ["rename", str(out / "panel.json"), "SPEAKER_01=Mudaqiq"], catch_exceptions=False)
    monkeypatch.setattr(rn, "atomic_write_text", real)
    r = rename(str(out / "panel.json"), "SPEAKER_00=Tahir")
    assert r.exit_code == 2 and "interrupted" in r.output and "SPEAKER_01='Mudaqiq'" in r.output
    assert rename(str(out / "panel.json"), "SPEAKER_01=Mudaqiq").exit_code == 0
    assert rename(str(out / "panel.json"), "SPEAKER_00=Tahir").exit_code == 0
    assert "Mudaqiq" in (out / "panel.srt").read_text() and "Tahir" in (out / "panel.vtt").read_text()
