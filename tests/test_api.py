"""`import majlis`: the names it exports, loaded only when used, and the README's example run as written (on a
49-second cut of the demo panel, with the offline engines)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import majlis
from test_cli import PANEL, ffmpeg

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "whisper", "pyannote", "resemblyzer", "pocketsphinx", "numpy", "whoosh")


def test_import_majlis_loads_nothing_heavy():
    code = ("import sys, majlis\n"
            "assert sorted(majlis.__all__) == sorted(n for n in dir(majlis) if n in majlis.__all__)\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
            "majlis.Transcript, majlis.transcribe, majlis.MajlisError, majlis.read_transcript\n"
            f"print([m for m in {HEAVY[:5]!r} if m in sys.modules])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "[]"]


def test_every_exported_name_resolves_and_says_what_it_returns():
    for name in majlis.__all__:
        assert getattr(majlis, name) is not None, name
    with pytest.raises(AttributeError):
        majlis.no_such_name  # noqa: B018
    for fn in (majlis.transcribe, majlis.Transcript.write, majlis.Index.search, majlis.Transcript.read):
        doc = fn.__doc__ or ""
        assert re.search(r"\bReturns?\b|\breturns\b", doc) and re.search(r"\bRaises?\b|\braises\b", doc), fn
    assert "IndexMissing" in majlis.Index.__doc__


def test_bad_calls_raise_majlis_errors_before_any_model_loads(tmp_path):
    with pytest.raises(majlis.MajlisError, match="unknown language code"):
        majlis.transcribe(PANEL, language="xx")
    with pytest.raises(majlis.MajlisError, match="not a folder"):
        majlis.transcribe(PANEL, speakers=tmp_path / "none")
    with pytest.raises(majlis.MajlisError, match="no such file"):
        majlis.transcribe(tmp_path / "none.mp3")
    with pytest.raises(majlis.MajlisError, match="unexpected keyword"):
        majlis.transcribe(PANEL, colour="red")


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_runs_as_written(tmp_path):
    ffmpeg("-i", str(PANEL), "-ss", "55", "-t", "49", "-c:a", "aac", str(tmp_path / "talk.m4a"))
    (tmp_path / "voices").symlink_to(ROOT / "audio" / "speakers")
    code = readme_example()
    assert 'majlis.transcribe("talk.m4a", speakers="voices/")' in code
    # The one change: the offline engine, as its comment says (whisper weights may not be here).
    code = code.replace('speakers="voices/")', 'speakers="voices/", asr="sphinx")', 1)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("('Mudaqiq', 'Pannier', 'Tahir', 'Tolibov') 49 s"), lines[0]
    assert sorted(p.name for p in (tmp_path / "transcripts").iterdir()) == ["talk.docx", "talk.srt", "talk.vtt"]
    hits = [line.split() for line in lines[1:]]
    assert hits and all(h[0] == "Tolibov" for h in hits), lines
    # Tolibov says "Sharia law for betrayal" 33-39 s into the cut
    assert any(32 < float(h[1]) < 40 and h[-1].startswith("talk.m4a#t=") for h in hits), lines
