"""Every command of README's "Using it", run as written, in order, in a fresh copy of the repository (its
tracked files only), as a new user would type them from the repository root. `serve` is started, asked for
its page and stopped (on a free port, since 8000 may be taken on a test machine)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def using_it_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Using it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            commands.append(shlex.split(line))
    return commands


def fresh_copy(dest: Path) -> Path:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file() and not name.startswith(("src/", "tests/", "bench/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def serve(args: list[str], cwd: Path) -> str:
    proc = subprocess.Popen([sys.executable, "-m", "majlis", *args, "--port", "0"], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = ""
        while "serving" not in line and proc.poll() is None:  # `--edit` first prints the editing link
            line = proc.stdout.readline()
        assert "serving" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        port = line.split(" at ")[1].split()[0].rsplit(":", 1)[1].strip("/")
        host = args[args.index("--allowed-host") + 1] if "--allowed-host" in args else "127.0.0.1"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": host})
        with urllib.request.urlopen(request, timeout=30) as page:
            return page.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_every_using_it_command_works_as_written_from_a_fresh_clone(tmp_path):
    commands = using_it_commands()
    assert len(commands) >= 8 and all(c[0] == "majlis" for c in commands)
    repo = fresh_copy(tmp_path / "majlis")
    outputs = []
    for command in commands:
        args = command[1:]
        if args[0] == "serve":
            page = serve(args, repo)
            assert "<html" in page.lower(), command
            outputs.append(page)
            continue
        r = subprocess.run([sys.executable, "-m", "majlis", *args], cwd=repo, capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, (command, r.stdout[-1000:], r.stderr[-2000:])
        outputs.append(r.stdout)
        if args[0] == "search":
            hits = json.loads(r.stdout) if "--json" in args else r.stdout
            assert hits, command  # the README's queries find something in the demo panel
        if "-o" in args:
            assert (repo / args[args.index("-o") + 1]).stat().st_size > 0
    # The voice learnt by `rename --learn` named him in the transcript made without --speakers.
    relearned = json.loads((repo / "relearned" / "panel.json").read_text())
    assert "Bruce Pannier" in relearned["speakers"]
