"""The ASR engine in a child process: the same words as in-process, progress through the hook, the child's
errors raised as they were, a killed child reported in one line, and no re-run of the caller's script."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from majlis.asr import get_asr
from majlis.asr.child import ChildProcessAsr
from majlis.audio import decode
from majlis.errors import EngineCrashed, UsageError
from majlis.pipeline import Engines, Options

PANEL = Path(__file__).resolve().parents[1] / "audio" / "panel.mp3"


@pytest.fixture(scope="module")
def samples(speech_wav):
    return decode(speech_wav)


@pytest.fixture(scope="module")
def child():
    asr = ChildProcessAsr("sphinx")
    yield asr
    asr.close()


def test_same_words_as_in_process_with_progress(child, samples):
    calls = []
    result = child.transcribe(samples, hook=lambda *a: calls.append(a))
    assert child.name == "sphinx:en-us"
    assert result == get_asr("sphinx").transcribe(samples)
    assert sum(len(s.words) for s in result.segments) > 10
    assert calls[0] == ("asr", 0.0, len(samples) / 16000) and calls[-1][1] == calls[-1][2]
    assert len(calls) >= 3 and all(c[0] == "asr" for c in calls)


def test_reused_for_several_recordings(child, samples):
    first = child.transcribe(samples[: len(samples) // 2])
    again = child.transcribe(samples[: len(samples) // 2])
    assert first == again and first.segments


def test_an_array_in_memory_goes_through_a_file_the_sweep_knows(child, samples, tmp_path, monkeypatch):
    """If the parent dies mid-recording (kill -9), the file it wrote for the child must not stay behind:
    it carries the parent's process id, as decoded files do, so that the next decode removes it."""
    import tempfile

    from majlis import audio

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = []
    part = samples[: len(samples) // 3]  # a slice: not the decoded file itself
    child.transcribe(part, hook=lambda *a: seen.extend(p.name for p in tmp_path.iterdir()))
    assert seen and all(name.startswith(f"{audio.DECODED_PREFIX}{os.getpid()}-") for name in seen)
    assert list(tmp_path.iterdir()) == []


def test_load_error_is_the_engines_own():
    asr = ChildProcessAsr("sphinx", language="fr")
    with pytest.raises(UsageError, match="sphinx only knows English"):
        asr.name


def test_killed_child_is_one_line(samples):
    asr = ChildProcessAsr("sphinx")
    assert asr.name == "sphinx:en-us"
    timer = threading.Timer(0.5, lambda: os.kill(asr._process.pid, signal.SIGKILL))
    timer.start()
    with pytest.raises(EngineCrashed, match=r"ASR process stopped unexpectedly \(exit code -9\)"):
        asr.transcribe(np.tile(samples, 20))
    timer.join()


def test_pipeline_uses_a_child_only_beside_a_diarizer():
    assert isinstance(Engines.load(Options(asr="sphinx", diarizer="builtin")).asr, ChildProcessAsr)
    assert not isinstance(Engines.load(Options(asr="sphinx", diarizer="none")).asr, ChildProcessAsr)
    assert not isinstance(Engines.load(Options(asr="sphinx", diarizer="builtin"), side_by_side=False).asr,
                          ChildProcessAsr)


@pytest.mark.parametrize("asr", ["sphinx", "auto"])
def test_beside_a_diarizer_the_engine_loads_in_the_child_only(tmp_path, monkeypatch, caplog, asr, no_bundled):
    # The child starts before the diarizer loads and loads the engine meanwhile; loading it here as well
    # took a quarter of a second and its memory, for nothing. "auto" with no Whisper weights at all warns once.
    from majlis.asr import sphinx

    built = []
    real = sphinx.SphinxAsr.__init__
    monkeypatch.setattr(sphinx.SphinxAsr, "__init__", lambda self, **kw: built.append(kw) or real(self, **kw))
    with caplog.at_level(logging.WARNING, logger="majlis"):
        engines = Engines.load(Options(asr=asr, model_dir=str(tmp_path), diarizer="builtin"))
    try:
        assert isinstance(engines.asr, ChildProcessAsr) and engines.describe()["asr"] == "sphinx:en-us"
        assert built == []
        warnings = [r.getMessage() for r in caplog.records if "using the offline sphinx engine" in r.getMessage()]
        assert len(warnings) == (asr == "auto")
    finally:
        engines.close()


def test_auto_without_whisper_weights_runs_sphinx_whatever_model_was_asked(tmp_path):
    # "tiny" is multilingual: the bundled tiny.en is not it.
    # sphinx refuses --model; a whisper model named but not here must not be handed on to it.
    engines = Engines.load(Options(asr="auto", model="tiny", model_dir=str(tmp_path), diarizer="none"))
    assert engines.describe() == {"asr": "sphinx:en-us", "diarizer": "none"}


def test_a_diarizer_that_fails_to_load_takes_the_started_child_with_it(monkeypatch):
    from majlis import pipeline

    children = []
    monkeypatch.setattr(pipeline, "get_diarizer", lambda *a, **k: (_ for _ in ()).throw(UsageError("no diarizer")))
    real = ChildProcessAsr.__init__
    monkeypatch.setattr(ChildProcessAsr, "__init__", lambda self, *a, **k: children.append(self) or real(self, *a, **k))
    with pytest.raises(UsageError, match="no diarizer"):
        Engines.load(Options(asr="sphinx", diarizer="builtin"))
    assert len(children) == 1 and children[0]._process.wait(timeout=10) is not None


def test_script_without_main_guard_runs_once(tmp_path, samples):
    # multiprocessing's spawn would import this script again in the child and start it twice.
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from majlis.asr.child import ChildProcessAsr
        print("started", flush=True)
        asr = ChildProcessAsr("sphinx")
        print(asr.transcribe(np.zeros(16000, np.float32)).language, flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["started", "en"]


def _ctrl_c_on() -> None:
    """Ctrl-C as at a terminal: a suite started as a background job (`cmd &` in a script) runs with SIGINT
    ignored, which every process it starts would inherit, and no interrupt would ever arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("whole_group", [True, False], ids=["ctrl-c", "sigint-to-parent"])
def test_interrupt_stops_a_long_recording_at_once(tmp_path, whole_group):
    # Ctrl-C at a terminal signals the whole group; a supervisor may signal the parent alone. Either way the
    # parent must not wait for the child to finish the recording, and no child may be left behind.
    long = tmp_path / "long.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-stream_loop", "3", "-i", str(PANEL), str(long)], check=True)
    argv = [sys.executable, "-m", "majlis", "transcribe", str(long), "--asr", "sphinx", "--diarizer", "builtin",
            "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_on)
    deadline = time.time() + 60
    while not _asr_children(proc.pid) and time.time() < deadline:  # not ffmpeg, which comes first
        time.sleep(0.2)
    child_pids = _children(proc.pid)
    assert _asr_children(proc.pid), "the ASR child process never started"
    time.sleep(3)  # well inside the recording (about 40 s of work)
    (os.killpg if whole_group else os.kill)(proc.pid, signal.SIGINT)
    started = time.time()
    err = proc.communicate(timeout=60)[1]
    assert time.time() - started < 10
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "majlis: interrupted"
    assert not (tmp_path / "out" / "long.json").exists()
    time.sleep(0.5)
    assert not [pid for pid in child_pids if os.path.exists(f"/proc/{pid}") and _alive(pid)]


def test_ctrl_c_while_the_engine_loads_prints_one_line(tmp_path):
    # A Ctrl-C reaches the child too, as it starts: while the interpreter starts, imports pocketsphinx and loads
    # the model. It must not print a KeyboardInterrupt traceback from inside them beside the parent's message.
    # A signal that lands before Python installs its handler kills the child silently, and one after the
    # imports is caught, so by timing alone a test passes either way; the child must ignore it from the start.
    argv = [sys.executable, "-m", "majlis", "transcribe", str(PANEL), "--asr", "sphinx", "--diarizer", "builtin",
            "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_on)
    deadline = time.time() + 60
    while not (loading := [pid for pid in _asr_children(proc.pid) if _ignores_sigint(pid)]):
        assert time.time() < deadline and proc.poll() is None, "no ASR child that sets Ctrl-C aside while loading"
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "majlis: interrupted"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    time.sleep(0.5)
    assert not [pid for pid in loading if os.path.exists(f"/proc/{pid}") and _alive(pid)]


def _ignores_sigint(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(line for line in f if line.startswith("SigIgn:")).split()[1]
    except (OSError, StopIteration):
        return False
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _asr_children(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"majlis.asr.child" in f.read():
                    found.append(child)
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"
