"""majlis batch as an archivist meets it: a messy folder of real clips, real offline engines (sphinx, builtin),
a real on-disk index. Bad files are reported and never stop the run; a rerun does nothing; changing the voice
samples redoes naming but not ASR; a run killed with SIGKILL and started again ends byte-identical to one that
was never interrupted; two workers give the same bytes as one. Fast tests of the pure logic come first."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from majlis.audio import ffmpeg_binary
from majlis.batch import run_batch
from majlis.batch.worker import FileResult
from majlis.batch.collection import assign_episodes, discover, episode_slug
from majlis.errors import UsageError
from majlis.batch.ledger import Ledger, OutLock, ledger_path

ENGINES = ("--asr", "sphinx", "--diarizer", "builtin")


def majlis(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "majlis", *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def say(voice: str, text: str, out: Path) -> Path:
    """Real speech: flite renders it, ffmpeg encodes it to whatever `out`'s extension says."""
    out.parent.mkdir(parents=True, exist_ok=True)
    wav = out.with_name(out.name + ".src.wav")
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
    ffmpeg("-i", str(wav), "-ar", "16000", "-ac", "1", str(out))
    wav.unlink()
    return out


def stage_rows(out: Path) -> dict[tuple[str, str], tuple]:
    with sqlite3.connect(f"file:{ledger_path(out)}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT episode, stage, key, status, attempts, reused, seconds, finished FROM stages")
        return {(r[0], r[1]): r[2:] for r in rows}


def episode_status(out: Path) -> dict[str, tuple[str, str | None]]:
    with sqlite3.connect(f"file:{ledger_path(out)}?mode=ro", uri=True) as db:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT episode, status, error FROM episodes")}


# pure logic ---------------------------------------------------------------------------------------------


def test_episode_slug_comes_from_the_relative_path():
    assert episode_slug("2019/interview.mp3") == "2019-interview"
    assert episode_slug("Interview with Amin (final).FLAC") == "Interview-with-Amin-final"
    assert episode_slug("../outside/talk.wav") == "outside-talk"
    assert episode_slug("Ўзбекистон/suhbat.mp3") == "Ўзбекистон-suhbat"
    assert episode_slug("???.mp3") == "episode"


def test_ids_are_unique_and_never_change_when_files_are_added(tmp_path):
    for rel in ("a/interview.mp3", "b/interview.mp3", "a/interview.wav", "c/talk.mp3"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    first = assign_episodes(discover([tmp_path / "a", tmp_path / "b"]), {})
    ids = {j.relpath: j.episode for j in first}
    assert ids["a/interview.mp3"] == "a-interview" and ids["b/interview.mp3"] == "b-interview"
    assert ids["a/interview.wav"].startswith("a-interview-") and len(set(ids.values())) == 3
    known = {j.episode: (j.source, j.relpath) for j in first}
    # A later run over the whole tree: a different common root, one more file, no id changes.
    later = assign_episodes(discover([tmp_path]), known)
    later_ids = {Path(j.source): j.episode for j in later}
    for j in first:
        assert later_ids[Path(j.source)] == j.episode
    assert later_ids[tmp_path / "c/talk.mp3"] == "c-talk"
    # The same ids whatever order the inputs come in.
    again = assign_episodes(discover([tmp_path / "b", tmp_path / "a"]), {})
    assert {Path(j.source): j.episode for j in again} == {Path(j.source): j.episode for j in first}


def test_a_moved_archive_keeps_its_ids(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    (old / "2019").mkdir(parents=True)
    (old / "2019" / "interview.mp3").write_bytes(b"x")
    first = assign_episodes(discover([old]), {})
    known = {j.episode: (j.source, j.relpath) for j in first}
    old.rename(new)
    moved = assign_episodes(discover([new]), known)
    assert [j.episode for j in moved] == ["2019-interview"]


def test_manifests_csv_carries_metadata_and_episode_column_wins(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "one.mp3").write_bytes(b"x")
    (tmp_path / "audio" / "two.mp3").write_bytes(b"x")
    csv = tmp_path / "list.csv"
    csv.write_text("path,episode,title,date\naudio/one.mp3,ep-001,First talk,2019-03-01\n"
                   "audio/two.mp3,,,\nmissing.mp3,,Gone,\n")
    jobs = assign_episodes(discover([csv]), {})
    assert [j.episode for j in jobs] == ["ep-001", "audio-two", "missing"]
    assert jobs[0].metadata == {"title": "First talk", "date": "2019-03-01"}
    assert jobs[1].metadata == {} and jobs[2].metadata == {"title": "Gone"}
    txt = tmp_path / "list.txt"
    txt.write_text("# one per line\naudio/one.mp3\n\n" + str(tmp_path / "audio" / "two.mp3") + "\n")
    assert [Path(j.source).name for j in discover([txt])] == ["one.mp3", "two.mp3"]


@pytest.mark.parametrize("content, needle", [
    ("file,title\nx.mp3,X\n", "needs a 'path' column"),
    ("path,episode\na.mp3,same\nb.mp3,same\n", "given to two files"),
    ("path,episode\na.mp3,has/slash\n", "must be letters"),
    ("path\n", "lists no files"),
])
def test_bad_manifests_are_usage_errors(tmp_path, content, needle):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(UsageError, match=needle):
        discover([bad])


def test_folders_skip_hidden_folders_the_output_and_non_audio(tmp_path):
    for rel in ("x/a.mp3", "x/notes.txt", "x/.hidden/b.mp3", "x/out/c.mp3", "x/.d.mp3", "x/v/film.MP4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    jobs = discover([tmp_path / "x"], exclude=tmp_path / "x" / "out")
    assert [j.relpath for j in jobs] == ["a.mp3", "v/film.MP4"]
    assert [j.relpath for j in discover([str(tmp_path / "x" / "**" / "*.mp3")])] == ["a.mp3", "out/c.mp3"]
    with pytest.raises(UsageError, match="no such file"):
        discover([tmp_path / "nowhere"])
    with pytest.raises(UsageError, match="no audio or video files"):
        discover([str(tmp_path / "*.ogg")])


def test_the_output_folder_lock_is_exclusive(tmp_path):
    with OutLock(tmp_path):
        with pytest.raises(UsageError, match="already writing"):
            with OutLock(tmp_path):
                pass
    with OutLock(tmp_path):  # released on exit
        pass


def test_a_damaged_ledger_is_one_clear_error(tmp_path):
    path = ledger_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(4096))
    for readonly in (False, True):
        with pytest.raises(UsageError, match="ledger cannot be used .*move it away"):
            Ledger(path, readonly=readonly)
    assert OutLock.holder(tmp_path) is None
    with OutLock(tmp_path):
        assert OutLock.holder(tmp_path) == os.getpid()


def _fake_process(task):
    """Stands in for process_file in a real process pool: a file named 'crash' kills its worker outright."""
    if "crash" in task.episode:
        os._exit(7)
    time.sleep(0.2)
    return FileResult(task.episode, True, sha256="0", duration=1.0, transcript_key="k", outputs=())


class _PoolRunningFake:
    """A real spawn process pool behind the Executor interface, running _fake_process instead of the engines."""

    def __init__(self, settings, on_event):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn, *args):
        return self.pool.submit(_fake_process, *args)

    def wait_any(self, futures, timeout):
        from concurrent.futures import FIRST_COMPLETED, wait

        return wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)[0]

    def close(self, *, cancel=False):
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


def test_a_worker_that_dies_fails_only_its_own_file(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b", "crash", "c", "d"):
        (src / f"{name}.wav").write_bytes(b"x")
    summary = run_batch([src], tmp_path / "out", workers=2, executor_factory=_PoolRunningFake)
    assert (summary.done, summary.failed) == (4, 1)
    assert [f.episode for f in summary.failures] == ["crash"]
    assert "worker process died" in summary.failures[0].error
    status = episode_status(tmp_path / "out")
    assert {ep for ep, (s, _) in status.items() if s == "done"} == {"a", "b", "c", "d"}


# end to end with real engines -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict:
    """Four short real recordings (mp3 twice with the same name, flac with two voices, a video) and two bad files."""
    root = tmp_path_factory.mktemp("archive")
    src, parts = root / "collection", root / "parts"
    say("slt", "The movement was founded in Uzbekistan.", src / "a" / "interview.mp3")
    say("awb", "Its fighters went to Afghanistan.", src / "b" / "interview.mp3")
    say("slt", "Welcome to the panel on Central Asia.", parts / "p1.wav")
    say("awb", "Thank you, it is good to be here.", parts / "p2.wav")
    (src / "c").mkdir()
    ffmpeg("-i", str(parts / "p1.wav"), "-i", str(parts / "p2.wav"), "-filter_complex", "concat=n=2:v=0:a=1",
           str(src / "c" / "talk.flac"))
    clip = say("rms", "Observers in Tashkent saw a threat to the government.", parts / "v.wav")
    (src / "d" / "2019").mkdir(parents=True)
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:r=5", "-i", str(clip), "-shortest", "-c:v", "mpeg4",
           "-c:a", "aac", str(src / "d" / "2019" / "clip.mp4"))
    (src / "bad").mkdir()
    (src / "bad" / "corrupt.mp3").write_text("These are my notes, not a recording.\n" * 30)
    (src / "bad" / "empty.mp3").write_bytes(b"")
    speakers = root / "speakers"
    say("slt", "My name is Alice and I study the politics of Central Asia.", speakers / "Alice.wav")
    say("awb", "My name is Bob and I have travelled across the region.", speakers / "Bob.wav")
    good = ["a-interview", "b-interview", "c-talk", "d-2019-clip"]
    return {"src": src, "speakers": speakers, "good": good, "bad": ["bad-corrupt", "bad-empty"], "root": root}


def batch(corpus, out: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return majlis("batch", str(corpus["src"]), "--out", str(out), "--index", str(out / "index"), *ENGINES, *extra,
                  timeout=timeout)


def transcripts(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.json")) if not p.name.endswith(".podcast.json")}


def index_view(out: Path) -> tuple[list, dict]:
    from majlis.search.index import Index

    with Index(out / "index") as ix:
        episodes = [{k: v for k, v in e.items() if k != "transcript"} for e in ix.episodes()]
        searches = {q: sorted((h.episode, h.start, h.end) for h in ix.search(q, limit=50))
                    for q in ("Uzbekistan", "movement", "Central Asia", "the")}
    return episodes, searches


@pytest.fixture(scope="session")
def reference(corpus, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "out"
    t0 = time.monotonic()
    proc = batch(corpus, out)
    return {"out": out, "proc": proc, "seconds": time.monotonic() - t0}


@pytest.mark.slow
def test_a_messy_folder_transcribes_the_good_and_reports_the_bad(corpus, reference):
    out, proc = reference["out"], reference["proc"]
    print(f"reference run: {reference['seconds']:.1f}s\n{proc.stdout}")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert set(transcripts(out)) == {f"{ep}.json" for ep in corpus["good"]}
    docs = {ep: json.loads((out / f"{ep}.json").read_text()) for ep in corpus["good"]}
    assert docs["a-interview"]["audio"] == str(corpus["src"] / "a" / "interview.mp3")
    assert docs["b-interview"]["audio"] == str(corpus["src"] / "b" / "interview.mp3")
    words = " ".join(w["word"].lower() for s in docs["d-2019-clip"]["segments"] for w in s["words"])
    assert "government" in words, words  # real recognition of the video's audio track, not a placeholder
    status = episode_status(out)
    assert {ep for ep, (s, _) in status.items() if s == "done"} == set(corpus["good"])
    assert status["bad-corrupt"][1].startswith(f"{corpus['src'] / 'bad' / 'corrupt.mp3'}: ")  # names file and cause
    assert status["bad-empty"][1] == f"{corpus['src'] / 'bad' / 'empty.mp3'}: empty file (0 bytes)"
    episodes, _ = index_view(out)
    assert [e["episode"] for e in episodes] == sorted(corpus["good"])
    # The plain log: one line per file and stage.
    assert "[1/6] a-interview asr done" in proc.stderr
    assert "bad-corrupt FAILED at decode" in proc.stderr
    assert "2 failed:" in proc.stdout
    report = majlis("batch-status", "--out", str(out))
    assert report.returncode == 1
    assert f"bad-corrupt (decode): {status['bad-corrupt'][1]}" in report.stdout
    assert "bad-empty (decode)" in report.stdout and "empty file" in report.stdout
    assert "4 done, 2 failed" in report.stdout


@pytest.mark.slow
def test_a_rerun_does_nothing_and_says_so(corpus, reference):
    out = reference["out"]
    before, mtimes = stage_rows(out), {p: p.stat().st_mtime_ns for p in out.glob("*.json")}
    t0 = time.monotonic()
    proc = batch(corpus, out)
    seconds = time.monotonic() - t0
    assert proc.returncode == 1, proc.stderr  # the two bad files are still bad
    assert "nothing to do, 4 done earlier, 2 failed earlier" in proc.stderr
    assert stage_rows(out) == before  # no stage ran, none was even reused: attempts and timings unchanged
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.json")} == mtimes
    print(f"no-op rerun: {seconds:.1f}s")


@pytest.mark.slow
def test_new_voice_samples_redo_naming_not_asr(corpus, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference["out"], out, ignore=shutil.ignore_patterns("index"))
    before = stage_rows(out)
    proc = batch(corpus, out, "--speakers", str(corpus["speakers"]))
    assert proc.returncode == 1, proc.stderr
    after = stage_rows(out)
    for ep in corpus["good"]:
        for stage in ("asr", "diarize"):
            assert after[ep, stage][2] == before[ep, stage][2] == 1, (ep, stage)  # attempts: ran once, ever
            assert after[ep, stage][3] == before[ep, stage][3] + 1  # reused from the cache this time
        for stage in ("naming", "exports", "index"):
            assert after[ep, stage][2] == before.get((ep, stage), (0, 0, 0))[2] + 1, (ep, stage)
        assert after[ep, "naming"][0] != before[ep, "naming"][0]  # a new key
    assert "a-interview asr reused" in proc.stderr
    # The new transcripts carry the naming: awb's voice is enrolled as Bob; nothing keeps a diarizer label.
    named = {ep: json.loads((out / f"{ep}.json").read_text()) for ep in corpus["good"]}
    assert named["b-interview"]["speakers"] == ["Bob"] and named["b-interview"]["speaker_scores"]["Bob"] > 0.7
    for doc in named.values():
        assert all(not s.startswith("SPEAKER_") for s in doc["speakers"]), doc["speakers"]
    assert json.loads((reference["out"] / "b-interview.json").read_text())["speakers"] == ["SPEAKER_00"]


@pytest.mark.slow
def test_subtitle_options_rewrite_only_the_exports(corpus, reference, tmp_path):
    from majlis.files import read_transcript
    from majlis.export import WRITERS, ExportOptions

    out = tmp_path / "out"
    shutil.copytree(reference["out"], out, ignore=shutil.ignore_patterns("index"))
    before = stage_rows(out)
    proc = batch(corpus, out, "--max_line_width", "16", "--max-line-count", "1", "--podcast-words")
    assert proc.returncode == 1, proc.stderr
    after = stage_rows(out)
    for ep in corpus["good"]:
        for stage in ("asr", "diarize", "naming"):
            assert after[ep, stage][2] == before[ep, stage][2], (ep, stage)  # not run again
        assert after[ep, "exports"][0] != before[ep, "exports"][0]  # the layout is in the exports' key
        t = read_transcript(out / f"{ep}.json")
        layout = ExportOptions(max_line_width=16, max_line_count=1, podcast_words=True)
        assert (out / f"{ep}.srt").read_bytes() == WRITERS["srt"].render(t, layout)
        assert (out / f"{ep}.srt").read_bytes() != WRITERS["srt"].render(t, ExportOptions())
        podcast = json.loads((out / f"{ep}.podcast.json").read_text())["segments"]
        assert podcast and all(" " not in x["body"] for x in podcast), ep  # one entry a word
    again = batch(corpus, out, "--max_line_width", "16", "--max-line-count", "1", "--podcast-words")
    assert "nothing to do" in again.stderr  # the same layout: nothing to redo


@pytest.mark.slow
def test_a_full_disk_stops_the_run_cleanly_and_a_rerun_finishes_it(corpus, reference, tmp_path, monkeypatch):
    import errno

    import majlis.export
    from majlis.files import _output_error
    from majlis.pipeline import Options

    real, calls = majlis.export.write_transcript, []

    def fills_up(transcript, out_dir, *a, **k):  # the disk fills while the second file's exports are written
        calls.append(transcript.episode)
        if len(calls) == 2:
            raise _output_error(OSError(errno.ENOSPC, "No space left on device"), Path(out_dir))
        return real(transcript, out_dir, *a, **k)

    monkeypatch.setattr(majlis.export, "write_transcript", fills_up)
    out = tmp_path / "out"
    options = Options(asr="sphinx", diarizer="builtin")
    summary = run_batch([corpus["src"]], out, options=options, formats=["json", "srt"], workers=1)
    assert summary.exit_code == 1 and "No space left on device: free some space" in summary.stopped
    assert summary.done == 1 and summary.failed == 1 and summary.not_done == 5  # nothing after the second began
    status = episode_status(out)
    assert [s for s, _ in status.values()].count("done") == 1
    [failed] = [e for e in status.values() if e[0] == "failed"]
    assert "free some space and run it again" in failed[1]
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp*"))

    monkeypatch.setattr(majlis.export, "write_transcript", real)  # space freed: the same run again finishes it
    again = run_batch([corpus["src"]], out, options=options, formats=["json", "srt"], workers=1)
    assert not again.stopped and again.done == 3 and again.skipped == 1
    assert {ep for ep, (s, _) in episode_status(out).items() if s == "done"} == set(corpus["good"])


@pytest.mark.slow
def test_a_deleted_index_is_rebuilt_from_the_transcripts(corpus, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference["out"], out, ignore=shutil.ignore_patterns("index"))
    before = stage_rows(out)
    proc = batch(corpus, out)
    assert proc.returncode == 1, proc.stderr
    assert "added to the index (transcribed earlier)" in proc.stderr
    assert index_view(out) == index_view(reference["out"])
    after = stage_rows(out)
    assert all(after[k] == v for k, v in before.items() if k[1] != "index")  # nothing but indexing ran


@pytest.mark.slow
def test_a_csv_manifest_names_episodes_and_carries_metadata(corpus, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference["out"], out, ignore=shutil.ignore_patterns("index"))
    manifest = corpus["root"] / "list.csv"
    manifest.write_text("path,episode,title,date\ncollection/a/interview.mp3,ep-001,The founding,1998-05-01\n")
    proc = majlis("batch", str(manifest), "--out", str(out), "--index", str(out / "index"), *ENGINES)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "ep-001.json").read_text())
    assert doc["metadata"] == {"title": "The founding", "date": "1998-05-01"}
    ref = json.loads((reference["out"] / "a-interview.json").read_text())
    assert doc["segments"] == ref["segments"]  # same recording, same engines: the cached stages served
    rows = stage_rows(out)
    assert rows["ep-001", "asr"][2:4] == (0, 1) and rows["ep-001", "diarize"][2:4] == (0, 1)  # reused, never ran
    from majlis.search.index import Index

    with Index(out / "index") as ix:
        assert ix.episode("ep-001")["title"] == "The founding"


@pytest.mark.slow
def test_kill_9_then_rerun_ends_identical_to_an_uninterrupted_run(corpus, reference, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "majlis", "batch", str(corpus["src"]), "--out", str(out),
           "--index", str(out / "index"), *ENGINES]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    done_at_kill = 0
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ledger_path(out).exists():
                try:
                    done_at_kill = sum(s == "done" for s, _ in episode_status(out).values())
                except sqlite3.OperationalError:
                    done_at_kill = 0
                if done_at_kill >= 1:
                    break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 1 <= done_at_kill < len(corpus["good"]), "the kill must land mid-run"
    finished_before = {k: v for k, v in stage_rows(out).items() if v[1] == "done"}
    rerun = majlis("batch", str(corpus["src"]), "--out", str(out), "--index", str(out / "index"), *ENGINES)
    assert rerun.returncode == 1, rerun.stderr
    assert transcripts(out) == transcripts(reference["out"])  # byte for byte
    assert index_view(out) == index_view(reference["out"])
    after = stage_rows(out)
    for key, row in finished_before.items():  # nothing finished before the kill ran again
        assert after[key][2] == row[2], key
    from majlis.search.index import Index

    with Index(out / "index") as ix:
        assert sorted(e["episode"] for e in ix.episodes()) == sorted(corpus["good"])  # each exactly once
        hits = ix.search("Uzbekistan", limit=50)
        assert len(hits) == len({(h.episode, h.segment_start) for h in hits})
    assert not list(out.glob(".*.tmp")) and not list((out / ".majlis" / "cache").rglob(".*.tmp"))


@pytest.mark.slow
def test_two_workers_give_the_same_bytes_as_one(corpus, reference, tmp_path):
    out = tmp_path / "out"
    proc = batch(corpus, out, "--workers", "2")
    assert proc.returncode == 1, proc.stderr
    assert transcripts(out) == transcripts(reference["out"])
    assert index_view(out) == index_view(reference["out"])
    assert {ep: s for ep, (s, _) in episode_status(out).items()} == {
        ep: s for ep, (s, _) in episode_status(reference["out"]).items()}


def test_bad_arguments_exit_2_with_one_line(tmp_path, corpus):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["batch", str(empty), "--out", str(tmp_path / "o")], "no audio or video files"),
        (["batch", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")], "no such file"),
        (["batch", str(corpus["src"]), "--out", str(tmp_path / "o"), "--format", "pdf"], "pdf"),
        (["batch", str(corpus["src"]), "--out", str(tmp_path / "o"), "--force", "--retry-failed"], "choose one"),
        (["batch-status", "--out", str(tmp_path / "never")], "no batch ledger"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("file\nx.mp3\n")
    cases.append((["batch", str(bad), "--out", str(tmp_path / "o")], "'path' column"))
    for args, needle in cases:
        proc = majlis(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("majlis: error: "), proc.stderr
        assert needle.lower() in lines[0].lower(), (needle, lines[0])


def test_a_second_batch_on_the_same_output_is_refused(tmp_path, corpus):
    out = tmp_path / "out"
    with OutLock(out):
        proc = majlis("batch", str(corpus["src"]), "--out", str(out), *ENGINES)
    assert proc.returncode == 2
    assert f"majlis: error: {out}: another `majlis batch` is already writing" in proc.stderr
    assert f"(pid {os.getpid()})" in proc.stderr


def test_a_ledger_that_cannot_write_says_so_as_an_output_error(tmp_path):
    """SQLite refusing a record (a full disk) is an OutputError naming the ledger, flagged disk_full, so the
    run stops with the hint instead of a NameError."""
    from majlis.errors import OutputError

    class Full:  # the connection once the disk is full: every write is refused
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def execute(self, *args):
            raise sqlite3.OperationalError("database or disk is full")

    with Ledger.for_out(tmp_path) as ledger:
        real, ledger._db = ledger._db, Full()
        try:
            with pytest.raises(OutputError, match="cannot write the batch ledger.*free some space") as e:
                ledger.set_episode("panel", status="done")
            assert e.value.disk_full
        finally:
            ledger._db = real
