"""What a terminal shows while `majlis transcribe` runs: a spinner while models load, then one overall bar with
an ETA over the file's stages and a bar per stage (naming and alignment included). Run under a real pty."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pytest

from majlis.cli.progress import WEIGHTS, overall
from test_cli import PANEL, ffmpeg


def test_overall_weighs_each_stage_that_runs():
    stages = {s: w for s, w in WEIGHTS.items() if s != "diarize"}
    assert overall({}, stages) == 0.0
    assert overall({"decode": 1.0}, stages) == pytest.approx(5 / 65)
    assert overall({"decode": 1.0, "asr": 0.5}, stages) == pytest.approx(30 / 65)
    assert overall({"decode": 1, "asr": 1, "name": 1}, stages) == pytest.approx(1.0)
    assert overall({"decode": 2.0, "diarize": 1.0}, stages) == pytest.approx(5 / 65)  # clamped; not a stage here
    assert overall({s: 1.0 for s in WEIGHTS}, WEIGHTS) == pytest.approx(1.0)


def run_in_pty(args: list[str], cwd) -> tuple[int, str]:
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "majlis", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60), out.decode("utf-8", "replace")


def test_a_terminal_sees_loading_then_overall_and_stage_bars(tmp_path):
    ffmpeg("-i", str(PANEL), "-t", "14", str(tmp_path / "clip.wav"))
    code, screen = run_in_pty(["transcribe", "clip.wav", "--asr", "sphinx", "-f", "json"], tmp_path)
    assert code == 0, screen
    assert "loading models (asr sphinx, diarizer auto)" in screen
    assert "naming + alignment" in screen and "  asr " in screen and "  diarize " in screen
    frames = [line for line in screen.split("\r") if "clip.wav " in line and "eta" in line]
    assert frames, screen[-2000:]
    assert "100%" in frames[-1]
    assert (tmp_path / "clip.json").exists()
    # --verbose False: nothing on the terminal at all
    code, screen = run_in_pty(["transcribe", "clip.wav", "--asr", "sphinx", "--diarizer", "none", "-f", "json",
                               "--verbose", "False"], tmp_path)
    assert code == 0 and screen.strip() == "", screen
