"""whisper's subtitle options on the srt and vtt exports, read back by the srt and webvtt-py parsers:
--max_line_width, --max_line_count, --highlight_words, and the podcast preset."""

from __future__ import annotations

import html
import re

import pytest

from majlis.export.writers import PRESETS, WRITERS, ExportOptions, clock, write_transcript
from test_writers import LONG, transcript  # noqa: F401 - the fixture


@pytest.mark.parametrize("width,count", [(20, 2), (32, 2), (42, 1), (60, 3), (12, 4)])
def test_line_width_and_count(tmp_path, transcript, width, count):  # noqa: F811
    import srt
    import webvtt

    options = ExportOptions(max_line_width=width, max_line_count=count)
    srt_path, vtt_path = write_transcript(transcript, tmp_path, ["srt", "vtt"], options=options)
    subs = list(srt.parse(srt_path.read_text(encoding="utf-8")))
    for s in subs:
        lines = s.content.splitlines()
        assert 1 <= len(lines) <= count
        # a line that is too long holds one word (after the speaker's name, which may fill a narrow line)
        name = s.content.split(": ", 1)[0]
        lines[0] = lines[0] if len(lines[0]) <= width else lines[0].removeprefix(name + ": ")
        assert all(len(line) <= width or " " not in line for line in lines), (width, lines)
    assert " ".join(s.content.split(": ", 1)[1].replace("\n", " ") for s in subs
                    if s.content.startswith("Bruce Pannier: ")) == LONG
    captions = list(webvtt.read(str(vtt_path)))
    for c in captions:
        assert 1 <= len(c.lines) <= count
        visible = [html.unescape(re.sub(r"^<v [^>]*>", "", line)) for line in c.lines]
        assert all(len(line) <= width or " " not in line for line in visible), (width, visible)
    default = len(list(srt.parse(WRITERS["srt"].format(transcript))))
    assert len(subs) > default if width * count < 42 * 2 else len(subs) <= default


def test_the_podcast_preset_is_32_characters():
    assert PRESETS == {"broadcast": 42, "podcast": 32}


def test_highlight_words_shows_each_cue_once_per_word(tmp_path, transcript):  # noqa: F811
    import srt
    import webvtt

    options = ExportOptions(highlight_words=True)
    plain = list(srt.parse(WRITERS["srt"].format(transcript)))
    srt_path, vtt_path = write_transcript(transcript, tmp_path, ["srt", "vtt"], options=options)
    subs = list(srt.parse(srt_path.read_text(encoding="utf-8")))
    underlined = [re.findall(r"<u>(.*?)</u>", s.content) for s in subs]
    assert all(len(u) <= 1 for u in underlined)
    # every word is underlined exactly once, in order, for exactly its own time
    words = [w for s in transcript.segments for w in s.words]
    marked = [(s, u[0]) for s, u in zip(subs, underlined) if u]
    assert [u for _, u in marked] == [w.word for w in words]
    for (s, _), w in zip(marked, words):
        assert (s.start.total_seconds(), s.end.total_seconds()) == pytest.approx((w.start, w.end), abs=0.0006)
    # with the tags removed, each shows the text of one of the plain cues
    plain_texts = {p.content for p in plain}
    assert all(re.sub(r"</?u>", "", s.content) in plain_texts for s in subs)
    # between two words the plain cue stays up: the cues tile each plain cue without gaps
    for p in plain:
        inside = [s for s in subs if p.start <= s.start and s.end <= p.end]
        assert inside[0].start == p.start and inside[-1].end == p.end
        assert all(a.end == b.start for a, b in zip(inside, inside[1:]))
    captions = list(webvtt.read(str(vtt_path)))
    assert len(captions) == len(subs)
    assert "tajikistan &amp; <u>afghanistan</u>" in vtt_path.read_text(encoding="utf-8")
    assert all(c.voice for c in captions)
    assert captions[0].start == clock(words[0].start)
