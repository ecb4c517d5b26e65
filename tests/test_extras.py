"""The default install needs no torch: the default engines (faster-whisper, the builtin diarizer, naming by
voice) run in a process where torch, openai-whisper and pyannote.audio cannot be imported, as after
`pip install majlis`; the engines of the extras then say which extra to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Put first on sys.path of the child: these packages (and anything under them) then fail to import, as where
# they are not installed.
BLOCKER = '''
import sys
BLOCKED = ("torch", "torchaudio", "whisper", "pyannote", "resemblyzer", "lightning", "pytorch_lightning")
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocker())
'''


def without_extras(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    site = tmp_path / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "src")])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=tmp_path)


def test_the_blocker_blocks(tmp_path):
    r = without_extras(tmp_path, "-c", "import torch")
    assert r.returncode == 1 and "No module named 'torch'" in r.stderr


@pytest.mark.slow
def test_default_engines_transcribe_diarize_and_name_without_torch(tmp_path, speech_wav):
    voices = tmp_path / "voices"
    voices.mkdir()
    # Each voice sample is a turn of the recording itself: naming must work end to end without torch.
    from majlis.audio import SAMPLE_RATE, decode
    import wave
    import numpy as np

    samples = decode(speech_wav)
    pause_at = int(np.argmax(np.convolve(np.abs(samples) < 1e-4, np.ones(SAMPLE_RATE), "valid")))
    for name, part in (("Tahir", samples[:pause_at]), ("Pannier", samples[pause_at + SAMPLE_RATE :])):
        with wave.open(str(voices / f"{name}.wav"), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(SAMPLE_RATE)
            w.writeframes((np.clip(part, -1, 1) * 32767).astype("<i2").tobytes())
    code = (
        "import sys, runpy; sys.argv = ['majlis'] + sys.argv[1:]; "
        "from majlis.cli import main; "
        "rc = 0\n"
        "try:\n    main()\nexcept SystemExit as e:\n    rc = e.code or 0\n"
        "print('TORCH_LOADED' if 'torch' in sys.modules else 'NO_TORCH', file=sys.stderr); sys.exit(rc)"
    )
    r = without_extras(tmp_path, "-c", code, "transcribe", str(speech_wav), "--speakers", str(voices),
                       "--out", str(tmp_path / "out"), "--format", "json", "--index", str(tmp_path / "index"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "NO_TORCH" in r.stderr
    t = json.loads((tmp_path / "out" / "speech.json").read_text())
    assert t["engines"]["asr"].startswith("faster-whisper")
    assert t["engines"]["diarizer"].startswith("builtin")
    said = {s["speaker"]: s["text"] for s in t["segments"]}
    assert "province" in said.get("Tahir", "") and "first time" in said.get("Pannier", "")


@pytest.mark.parametrize("args, extra", [
    (["--asr", "whisper"], "whisper"),
    (["--diarizer", "pyannote"], "pyannote"),
])
def test_an_engine_of_a_missing_extra_names_the_extra(tmp_path, speech_wav, args, extra):
    r = without_extras(tmp_path, "-m", "majlis", "transcribe", str(speech_wav), "--out", str(tmp_path / "out"),
                       *args)
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert f"pip install 'majlis[{extra}]'" in line and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
