"""The `majlis` command as users meet it: bad recordings give one clear line and exit 2, help is instant."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from majlis.audio import ffmpeg_binary

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "audio" / "panel.mp3"


def majlis(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "majlis", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("majlis: error: ")
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    d = tmp_path_factory.mktemp("bad")
    empty = d / "empty.wav"
    empty.write_bytes(b"")
    text = d / "notes.mp3"
    text.write_text("These are my notes, not a recording.\n" * 20)
    ffmpeg("-i", str(PANEL), "-t", "20", "-c:a", "flac", str(d / "whole.flac"))
    truncated = d / "truncated.flac"
    data = (d / "whole.flac").read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    video = d / "silent-film.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", "-an", "-c:v", "mpeg4", str(video))
    return {
        "missing": (d / "nowhere.mp3", "no such file"),
        "empty": (empty, "empty"),
        "text": (text, "not an audio"),
        "truncated": (truncated, "truncated"),
        "video": (video, "no audio stream"),
        "folder": (d, "directory"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "video", "folder"])
def test_bad_input_gets_one_line_and_exit_2(bad_inputs, case, tmp_path):
    path, cause = bad_inputs[case]
    proc = majlis("transcribe", str(path), "--asr", "sphinx", "--diarizer", "none", "--out", str(tmp_path))
    assert_one_line_error(proc, path.name, cause)
    assert list(tmp_path.iterdir()) == [], "nothing may be written for a bad input"


def test_unknown_format_is_a_usage_error(tmp_path):
    proc = majlis("transcribe", str(PANEL), "--format", "json,pdf", "--out", str(tmp_path))
    assert_one_line_error(proc, "pdf")


def test_sphinx_refuses_other_languages(tmp_path):
    proc = majlis("transcribe", str(PANEL), "--asr", "sphinx", "--language", "uz", "--out", str(tmp_path))
    assert_one_line_error(proc, "english")


def test_silence_gives_an_empty_transcript(tmp_path):
    silence = tmp_path / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "5", str(silence))
    proc = majlis("transcribe", str(silence), "--asr", "sphinx", "--diarizer", "builtin", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "silence.json").read_text())
    assert doc["segments"] == []
    assert doc["duration"] == pytest.approx(5.0, abs=0.05)


def test_help_and_version_do_not_load_engines():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from majlis.cli import main\n"
        "for args in (['--help'], ['--version'], ['transcribe', '--help'], ['search', '--help'], ['batch', '--help']):\n"
        "    r = CliRunner().invoke(main, args)\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
        "heavy = [m for m in ('torch', 'whisper', 'pyannote', 'resemblyzer', 'pocketsphinx', 'dask', 'distributed')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_match_threshold_option_reaches_naming():
    import re

    from click.testing import CliRunner

    from majlis.cli import main
    from majlis.cli.transcribe import build_options

    # every option at its default, as click hands them over (a hand-written list missed options added later)
    base = main.get_command(None, "transcribe").make_context("transcribe", ["x.wav"]).params
    base |= {"asr": "sphinx", "diarizer": "builtin"}
    # No threshold given: naming calibrates itself per episode (speakers.decide); a number is a plain bar.
    assert build_options({**base, "match_threshold": None}).match_threshold is None
    assert build_options({**base, "match_threshold": 0.75}).match_threshold == 0.75
    help_text = " ".join(CliRunner().invoke(main, ["transcribe", "--help"], terminal_width=200).output.split())
    assert re.search(r"--speakers, and nothing else \[default: calibrated per episode", help_text)
    bad = CliRunner().invoke(main, ["transcribe", "x.wav", "--match-threshold", "1.5"])
    assert bad.exit_code == 2 and "1.5" in bad.output


def test_every_command_is_registered_for_lazy_loading():
    import importlib

    from majlis.cli import _COMMANDS, main

    for module in {m for m, _ in _COMMANDS.values()}:
        for command in importlib.import_module(f"majlis.cli.{module}").commands:
            assert _COMMANDS.get(command.name) == (module, command.callback.__name__), command.name
            assert main.get_command(None, command.name) is command


def test_python_dash_m_and_version():
    proc = majlis("--version")
    assert proc.returncode == 0
    assert "majlis" in proc.stdout


def transcribe_no_engine(*args: str) -> tuple[subprocess.CompletedProcess, bool]:
    """`majlis transcribe ARGS` in a fresh process; also says whether any engine library got imported."""
    code = ("import sys\nfrom majlis.cli import main\ntry:\n    main(['transcribe', *sys.argv[1:]])\n"
            "finally:\n    heavy = [m for m in ('torch', 'pocketsphinx', 'resemblyzer', 'whisper') if m in sys.modules]\n"
            "    print('HEAVY', heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    heavy = next(ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY"))
    proc.stderr = "\n".join(ln for ln in proc.stderr.splitlines() if not ln.startswith("HEAVY"))
    return proc, heavy != "HEAVY []"


def test_unwritable_outputs_and_bad_voice_samples_fail_before_any_engine_loads(bad_inputs, tmp_path):
    good = bad_inputs["truncated"][0].with_name("whole.flac")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args, needles in [
        (["--out", str(a_file / "sub")], ["--out", "not writable", "not a directory"]),
        (["--out", "/proc/majlis-out"], ["--out /proc/majlis-out", "not writable"]),
        (["--out", str(tmp_path / "out"), "--index", "/proc/majlis-index"], ["--index", "not writable"]),
    ]:
        proc, loaded = transcribe_no_engine(str(good), "--asr", "sphinx", *args)
        assert_one_line_error(proc, *needles)
        assert not loaded
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "Tahir.mp3").write_text("not a recording")
    proc, loaded = transcribe_no_engine(str(good), "--asr", "sphinx", "--speakers", str(voices),
                                        "--out", str(tmp_path / "out2"))
    assert_one_line_error(proc, "Tahir.mp3", "not an audio")
    assert not loaded and not (tmp_path / "out2").exists()


def test_batch_checks_outputs_and_voice_samples_before_any_engine_loads(bad_inputs, tmp_path):
    good = bad_inputs["truncated"][0].with_name("whole.flac")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    proc = majlis("batch", str(good), "--out", str(a_file / "out"), "--asr", "sphinx")
    assert_one_line_error(proc, "--out", "not writable")
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "Tahir.wav").write_bytes(b"RIFF not really")
    proc = majlis("batch", str(good), "--out", str(tmp_path / "out"), "--asr", "sphinx", "--speakers", str(voices))
    assert_one_line_error(proc, "Tahir.wav")
    assert not list((tmp_path / "out").glob("*.json"))


def test_the_temporary_folder_must_have_room_for_the_decoded_samples(tmp_path):
    from majlis.errors import OutputError
    from majlis.files import check_writable

    check_writable(tmp_path, "TMPDIR", need=1)
    with pytest.raises(OutputError, match="MB free, .* MB needed"):
        check_writable(tmp_path, "TMPDIR", need=10**18)


@pytest.fixture(scope="module")
def glitched(tmp_path_factory) -> Path:
    """12 s of the panel as MP3 with 40 zeroed bytes in the middle: a frame or two the decoder conceals."""
    d = tmp_path_factory.mktemp("glitch")
    ffmpeg("-i", str(PANEL), "-t", "12", str(d / "whole.mp3"))
    data = bytearray((d / "whole.mp3").read_bytes())
    data[len(data) // 2: len(data) // 2 + 40] = bytes(40)
    (d / "glitch.mp3").write_bytes(bytes(data))
    return d / "glitch.mp3"


@pytest.mark.slow
def test_a_damaged_recording_is_transcribed_and_marked_or_refused_with_strict(glitched, tmp_path):
    proc = majlis("transcribe", str(glitched), "--asr", "sphinx", "--diarizer", "none", "--out", str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stderr
    assert "damaged" in proc.stdout and "decoded with errors" in proc.stderr
    data = json.loads((tmp_path / "a" / "glitch.json").read_text())
    assert data["damaged"] is True and data["damage"]["errors"] >= 1 and data["damage"]["first_error"]
    assert 0 <= data["damage"]["missing"] < 1.0 and data["segments"]
    from majlis.files import read_transcript

    assert read_transcript(tmp_path / "a" / "glitch.json").damage.errors == data["damage"]["errors"]
    proc = majlis("transcribe", str(glitched), "--asr", "sphinx", "--diarizer", "none", "--strict",
                  "--out", str(tmp_path / "b"))
    assert_one_line_error_after_warning(proc, "glitch.mp3", "damaged", "--strict")
    # no transcript or export; only the stage cache (.majlis), so a run without --strict need not redo the work
    assert [p.name for p in (tmp_path / "b").iterdir() if not p.name.startswith(".")] == []


def assert_one_line_error_after_warning(proc, *needles: str) -> None:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("majlis: error: ")]
    assert len(errors) == 1 and all(n.lower() in errors[0].lower() for n in needles), proc.stderr


@pytest.mark.slow
def test_batch_records_a_damaged_recording_as_done_damaged_or_fails_it_with_strict(glitched, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(glitched, src / "glitch.mp3")
    out = tmp_path / "out"
    engines = ("--asr", "sphinx", "--diarizer", "none")
    proc = majlis("batch", str(src), "--out", str(out), *engines)
    assert proc.returncode == 0, proc.stderr
    assert "glitch done" in proc.stderr and "damaged: decoded with" in proc.stderr
    assert json.loads((out / "glitch.json").read_text())["damaged"] is True
    status = majlis("batch-status", "--out", str(out))
    assert status.returncode == 0 and "1 done (1 damaged)" in status.stdout
    assert f"glitch: {src / 'glitch.mp3'}: damaged: decoded with" in status.stdout

    # --strict: the same file fails at decode, one line naming it and the cause; the run exits 1
    strict = majlis("batch", str(src), "--out", str(out), *engines, "--strict")
    assert strict.returncode == 1, strict.stderr
    assert "Traceback" not in strict.stderr and "glitch FAILED at decode" in strict.stderr
    assert "--strict: not transcribed" in strict.stderr
    report = majlis("batch-status", "--out", str(out))
    assert report.returncode == 1 and "0 done, 1 failed" in report.stdout
