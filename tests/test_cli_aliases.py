"""The spellings whisper and WhisperX users type: underscores in every multi-word flag of every command,
whisper's names for a few flags, --verbose False, --no-diarize; a real run with them."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from majlis.cli import MajlisGroup, _COMMANDS, main
from majlis.cli.aliases import add_aliases, underscored_args
from test_cli import PANEL, assert_one_line_error, ffmpeg, majlis


def all_commands():
    return [main.get_command(None, name) for name in sorted(_COMMANDS)]


def test_every_multiword_flag_of_every_command_has_an_underscore_spelling():
    checked = 0
    for command in all_commands():
        for param in command.params:
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("--") and "-" in opt[2:]:
                    under = "--" + opt[2:].replace("-", "_")
                    assert underscored_args(command, [under, "x"]) == [opt, "x"], (command.name, opt)
                    assert underscored_args(command, [f"{under}=3"]) == [f"{opt}=3"]
                    checked += 1
    assert checked >= 20
    # values and everything after -- are left alone; unknown flags stay unknown (and click says so)
    transcribe = main.get_command(None, "transcribe")
    assert underscored_args(transcribe, ["--names", "SPEAKER_00=a_b", "--", "--model_dir"]) == \
        ["--names", "SPEAKER_00=a_b", "--", "--model_dir"]
    r = CliRunner().invoke(main, ["transcribe", "x.wav", "--no_such_flag"])
    assert r.exit_code == 2 and "--no_such_flag" in r.output


def test_whisper_names_for_out_format_and_prompt():
    transcribe = main.get_command(None, "transcribe")
    out = next(p for p in transcribe.params if p.name == "out_dir")
    assert {"-o", "--out", "--output-dir"} <= set(out.opts)
    fmt = next(p for p in transcribe.params if p.name == "formats")
    assert {"-f", "--format", "--output-format"} <= set(fmt.opts) and fmt.default == "all"
    assert "-o" in next(p for p in main.get_command(None, "batch").params if p.name == "out_dir").opts
    assert "--initial-prompt" in next(p for p in transcribe.params if p.name == "prompt").opts
    assert underscored_args(transcribe, ["--initial_prompt", "Tolibov"]) == ["--initial-prompt", "Tolibov"]
    # clip keeps its own -o (the output file); --out is not one of its flags
    clip_o = [p.name for p in main.get_command(None, "clip").params if "-o" in p.opts]
    assert clip_o and "out_dir" not in clip_o


def test_a_flag_added_later_gets_its_spellings_for_free():
    @click.command("later")
    @click.option("--brand-new-flag")
    @click.option("--prompt")
    @click.option("--keep/--no-keep-it", default=True)
    def later(brand_new_flag, prompt, keep):
        click.echo(f"{brand_new_flag} {prompt} {keep}")

    group = MajlisGroup(commands={"later": add_aliases(later)})
    r = CliRunner().invoke(group, ["later", "--brand_new_flag", "a", "--initial_prompt", "Tolibov.", "--no_keep_it"])
    assert r.exit_code == 0, r.output
    assert r.output == "a Tolibov. False\n"


def test_diarize_flags_and_their_contradictions():
    from majlis.cli.transcribe import build_options

    base = main.get_command(None, "transcribe").make_context("transcribe", ["x.wav"]).params | {"asr": "sphinx"}
    assert build_options({**base, "diarize": False}).diarizer == "none"
    assert build_options({**base, "diarize": True}).diarizer == "auto"
    assert build_options({**base, "diarize": None, "diarizer": "builtin"}).diarizer == "builtin"
    for diarize, diarizer in ((False, "builtin"), (False, "pyannote"), (True, "none")):
        r = CliRunner().invoke(main, ["transcribe", str(PANEL), "--diarizer", diarizer,
                                      "--diarize" if diarize else "--no_diarize"])
        assert r.exit_code == 2 and "contradicts --diarizer" in r.output, r.output


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    ffmpeg("-i", str(PANEL), "-t", "14", str(path))
    return path


def test_a_run_typed_as_whisper_users_do(clip, tmp_path):
    proc = majlis("transcribe", str(clip), "--asr", "sphinx", "--no_diarize", "--output_dir", str(tmp_path / "o"),
                  "--output_format", "json,srt,vtt", "--max_line_width", "16", "--max_line_count", "1",
                  "--highlight_words", "True", "--verbose", "False", "--language", "English")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # --verbose False: quiet
    written = sorted(p.name for p in (tmp_path / "o").iterdir() if p.name != ".majlis")  # .majlis: the stage cache
    assert written == ["clip.json", "clip.srt", "clip.vtt"]
    doc = json.loads((tmp_path / "o" / "clip.json").read_text())
    assert doc["engines"]["diarizer"] == "none" and doc["language"] == "en" and doc["segments"]
    import srt

    subs = list(srt.parse((tmp_path / "o" / "clip.srt").read_text()))
    words = [w for s in doc["segments"] for w in s["words"]]
    assert sum("<u>" in s.content for s in subs) == len(words)
    for s in subs:
        (line,) = s.content.splitlines()
        body = line.split(": ", 1)[1].replace("<u>", "").replace("</u>", "")
        assert len(body) <= 16 or " " not in body


def test_format_defaults_to_all(clip, tmp_path):
    proc = majlis("transcribe", str(clip), "--asr", "sphinx", "--diarizer", "none", "-o", str(tmp_path),
                  "--subtitles", "podcast")
    assert proc.returncode == 0, proc.stderr
    assert "clip: 14.0 s" in proc.stdout
    from majlis.export.writers import WRITERS

    written = sorted(p.name for p in tmp_path.iterdir() if p.name != ".majlis")
    assert written == sorted(f"clip.{w.extension}" for w in WRITERS.values())
    assert max(len(line) for line in (tmp_path / "clip.vtt").read_text().splitlines()[1:]
               if "-->" not in line and " " in line.split(">", 1)[-1]) <= 32 + len("<v SPEAKER_00>")


def test_bad_spellings_still_get_one_line(tmp_path):
    assert_one_line_error(majlis("transcribe", str(PANEL), "--output_format", "pdf", "-o", str(tmp_path)), "pdf")

