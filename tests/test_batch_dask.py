"""majlis batch --executor dask on real clusters: a `dask scheduler` + `dask worker` started as a user would,
and LocalClusters of 2 worker processes; real clips of the demo panel, real offline engines, a real index.
Each run is compared byte for byte with the local executor's: uninterrupted, with a worker killed mid-file,
and with a poison file that kills every worker that takes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import cloudpickle
import pytest

from majlis.audio import ffmpeg_binary
from majlis.batch import run_batch
from majlis.batch.worker import process_file
from majlis.errors import UsageError
from majlis.batch.ledger import Ledger

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("--asr", "sphinx", "--diarizer", "builtin", "--format", "json")  # the library runs below write json only
CLIPS = {"a": (25.0, 4.9), "b": (40.7, 9.0), "c": (88.0, 6.6), "poison": (138.2, 2.6)}  # start, length in s

pytestmark = pytest.mark.slow
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the functions sent to workers, whatever their sys.path


def majlis(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "majlis", *args], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Four real clips of the demo panel (one with two voices) and a corrupt file."""
    folder = tmp_path_factory.mktemp("dask") / "archive"
    folder.mkdir()
    for name, (start, length) in CLIPS.items():
        subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-ss", str(start), "-t", str(length),
                        "-i", str(ROOT / "audio" / "panel.mp3"), "-ar", "16000", "-ac", "1", str(folder / f"{name}.wav")],
                       check=True)
    (folder / "bad.mp3").write_text("not a recording\n" * 50)
    return folder


def outcome(out: Path) -> dict:
    """What a run leaves: transcript bytes, the index's episodes and hits, each episode's status."""
    from majlis.search.index import Index

    with Index(out / "index") as ix:
        episodes = sorted(e["episode"] for e in ix.episodes())
        hits = sorted((h.episode, h.start, h.end) for h in ix.search("Zabul OR Afghanistan OR the", limit=100))
    with Ledger.for_out(out, readonly=True) as ledger:
        status = {r.episode: r.status for r in ledger.episodes()}
    return {"transcripts": {p.name: p.read_bytes() for p in sorted(out.glob("*.json"))}, "index": (episodes, hits),
            "status": status}


@pytest.fixture(scope="module")
def local(archive, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("local") / "out"
    proc = majlis("batch", str(archive), "--out", str(out), "--index", str(out / "index"), *ENGINES)
    assert proc.returncode == 1, proc.stderr  # bad.mp3
    result = outcome(out)
    assert result["status"] == {"a": "done", "b": "done", "c": "done", "poison": "done", "bad": "failed"}
    return result


# a cluster started as a user would ---------------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path):
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1`, as on a real cluster, here on one machine."""
    env = dict(os.environ, OMP_NUM_THREADS="1", DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")
    info = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                               "127.0.0.1:0", "--scheduler-file", str(info)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen([*dask, "worker", address, "--nworkers", "2", "--nthreads", "1"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
            yield address, client
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


def _count_engine_loads(dask_worker=None) -> None:
    """Runs in each worker: wraps the real Engines.load to count its calls."""
    from majlis import pipeline

    real = pipeline.Engines.load.__func__
    pipeline.LOADS = 0

    def counted(cls, *args, **kwargs):
        pipeline.LOADS += 1
        return real(cls, *args, **kwargs)

    pipeline.Engines.load = classmethod(counted)


def _worker_state(dask_worker) -> tuple[int, list[str]]:
    from majlis import pipeline

    return getattr(pipeline, "LOADS", 0), sorted(n for n in dask_worker.plugins if n.startswith("majlis"))


def test_a_running_cluster_gives_the_same_bytes_as_the_local_executor(archive, local, cluster, tmp_path):
    address, client = cluster
    client.run(_count_engine_loads)
    out = tmp_path / "out"
    proc = majlis("batch", str(archive), "--out", str(out), "--index", str(out / "index"), *ENGINES,
                  "--executor", "dask", env={"MAJLIS_DASK_SCHEDULER": address})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"majlis: the Dask cluster at {address}: 2 workers, dashboard http://127.0.0.1:" in proc.stderr
    assert "bad FAILED at decode" in proc.stderr and "[1/5] a done" in proc.stderr  # the local executor's log
    assert "1 failed:" in proc.stdout and "RTF" in proc.stdout  # and its summary
    assert outcome(out) == local
    loads = client.run(_worker_state)
    # Engines loaded once in each worker, never per file; the run took its plugin away when it finished.
    assert sorted(n for n, _ in loads.values()) == [1, 1], loads
    assert all(plugins == [] for _, plugins in loads.values()), loads
    assert not list((out / ".majlis").glob("dask-*"))


# LocalClusters under faults ------------------------------------------------------------------------------------


def _options():
    from majlis.pipeline import Options

    return Options(asr="sphinx", diarizer="builtin")


def test_a_worker_killed_mid_file_is_rerun_with_identical_results(archive, local, tmp_path):
    from majlis.batch.dask import DaskExecutor

    executors, killed = [], []

    def make(settings, on_event):
        executors.append(DaskExecutor(settings, on_event, workers=2, dashboard="127.0.0.1:0"))
        return executors[-1]

    def hook(e):
        if not killed and e.kind == "stage" and e.stage == "asr" and e.status == "start":
            client = executors[0].client
            where = next(w for w, keys in client.processing().items() if any(f"-{e.episode}-" in k for k in keys))
            os.kill(client.run(os.getpid, workers=[where])[where], signal.SIGKILL)
            killed.append(e.episode)

    out = tmp_path / "out"
    summary = run_batch([archive], out, options=_options(), index_dir=out / "index", executor="dask",
                        executor_factory=make, hook=hook)
    assert killed, "no worker was killed"
    assert (summary.done, summary.failed, summary.exit_code) == (4, 1, 1)
    assert outcome(out) == local
    with Ledger.for_out(out, readonly=True) as ledger:
        assert ledger.stage(killed[0], "asr").attempts == 2  # the kill landed inside the file, which ran again


def _kill_on_poison(fn, task):
    """In the worker: a file named poison kills the process that takes it, as a segfaulting decoder would."""
    if task.episode == "poison":
        os.kill(os.getpid(), signal.SIGKILL)
    return fn(task)


def test_a_poison_file_is_recorded_failed_and_the_run_goes_on(archive, local, tmp_path):
    from majlis.batch.dask import DaskExecutor

    class Poisoned(DaskExecutor):
        def submit(self, fn, /, *args):
            return super().submit(partial(_kill_on_poison, process_file), *args)

    out = tmp_path / "out"
    summary = run_batch([archive], out, options=_options(), index_dir=out / "index", executor="dask",
                        executor_factory=partial(Poisoned, workers=2, dashboard="127.0.0.1:0"))
    assert (summary.done, summary.failed, summary.exit_code) == (3, 2, 1)
    failures = {f.episode: f for f in summary.failures}
    assert failures["poison"].stage == "worker"
    assert "died 2 times" in failures["poison"].error
    result = outcome(out)
    assert result["status"] == dict(local["status"], poison="failed")
    assert {n: b for n, b in result["transcripts"].items()} == {
        n: b for n, b in local["transcripts"].items() if n != "poison.json"}


def test_a_killed_client_takes_its_local_workers_along_and_the_rerun_completes(archive, local, tmp_path):
    import psutil

    out = tmp_path / "out"
    argv = ["batch", str(archive), "--out", str(out), "--index", str(out / "index"), *ENGINES, "--executor", "dask",
            "--workers", "2"]
    client = subprocess.Popen([sys.executable, "-m", "majlis", *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline, done, workers = time.monotonic() + 300, 0, []
    try:
        while time.monotonic() < deadline and client.poll() is None and done < 1:
            time.sleep(0.1)
            workers = [p for p in psutil.Process(client.pid).children(recursive=True)] or workers
            try:
                with Ledger.for_out(out, readonly=True) as ledger:
                    done = sum(r.status == "done" for r in ledger.episodes())
            except UsageError:  # not there yet, or its tables not yet made
                pass
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    assert done == 1 and len(workers) >= 2, "the kill must land mid-run, with the workers up"
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"worker processes outlived their client: {alive}"
    rerun = majlis(*argv)
    assert rerun.returncode == 1, rerun.stderr
    assert "done earlier" in rerun.stderr
    assert outcome(out) == local
    assert not list((out / ".majlis").glob("dask-*"))  # the killed client's token file went with the rerun


def test_a_worker_that_cannot_see_the_output_folder_is_named(tmp_path, monkeypatch):
    from majlis.batch import dask as batch_dask
    from majlis.batch.worker import Settings

    class FakeWorker:  # the two attributes setup() uses
        address = "tcp://10.0.0.9:4000"

        def log_event(self, topic, msg):
            pass

    monkeypatch.setattr(batch_dask, "SHARED_WAIT", 0.5)
    (tmp_path / ".majlis").mkdir()
    plugin = batch_dask.EnginesPlugin(Settings(_options(), str(tmp_path), ("json",), ""), "topic", "dask-run1")
    plugin.setup(FakeWorker())
    try:
        assert plugin.sees_shared_folder() is False
        (tmp_path / ".majlis" / "dask-run1").write_text("1\n")
        assert plugin.sees_shared_folder() is False  # decided once per worker and run
        plugin.shared = None
        assert plugin.sees_shared_folder() is True
    finally:
        plugin.teardown(FakeWorker())


def test_dask_arguments_that_cannot_work_exit_2_with_one_line(archive, tmp_path):
    cases = [
        (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler needs --executor dask"),
        (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:8786", "--workers", "3"], "--workers sizes a local"),
    ]
    for args, needle in cases:
        proc = majlis("batch", str(archive), "--out", str(tmp_path / "o"), *ENGINES, *args)
        assert proc.returncode == 2, proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("majlis: error: ") and needle in lines[0], proc.stderr


def test_an_unreachable_scheduler_is_a_usage_error(archive, tmp_path, monkeypatch):
    from majlis.batch import dask as batch_dask

    monkeypatch.setattr(batch_dask, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(UsageError, match=r"--scheduler tcp://127\.0\.0\.1:9: cannot connect to a Dask scheduler"):
        run_batch([archive], tmp_path / "out", options=_options(), executor="dask", scheduler="tcp://127.0.0.1:9")
