"""The reading exports, parsed back: the HTML page by html5lib (strictly: a parse error fails), the Word
document by python-docx."""

from __future__ import annotations

import io

from majlis.export.documents import PALETTE, colour_index
from majlis.export.writers import WRITERS, ExportOptions, paragraphs, write_transcript
from test_writers import transcript  # noqa: F401 - the fixture


def test_html_parses_strictly_with_one_linked_paragraph_per_turn(tmp_path, transcript, monkeypatch):  # noqa: F811
    import html5lib

    monkeypatch.chdir(tmp_path)  # the transcript's audio, panel.mp3, is here; the page goes into out/
    (path,) = write_transcript(transcript, tmp_path / "out", ["html"])
    text = path.read_text(encoding="utf-8")
    doc = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)
    turns = doc.findall(".//main/p")
    expected = paragraphs(transcript)
    assert len(turns) == len(expected) == 3  # Tahir's two segments are one turn
    for p, (who, start, _, said) in zip(turns, expected):
        link, name = p.find("a"), p.find("b")
        assert link.get("href") == f"../panel.mp3#t={start:.3f}".rstrip("0").rstrip(".")
        assert name.text == who and name.tail == said
        assert p.get("class") == f"turn spk-{colour_index(who)}"
    assert "&lt;before&gt;" in text and doc.find(".//title").text == "IMU"  # escaped; the metadata title
    assert doc.find(".//audio").get("src") == "../panel.mp3"
    assert turns[0].find("a").text == "00:00:00" and turns[1].find("a").text == "00:00:04"


def test_html_links_to_the_url_it_is_given(transcript):  # noqa: F811
    text = WRITERS["html"].format(transcript, ExportOptions(audio_url="/audio/panel"))
    assert 'href="/audio/panel#t=4.5"' in text


def test_docx_has_a_bold_name_and_a_time_in_each_turn(tmp_path, transcript):  # noqa: F811
    import docx

    (path,) = write_transcript(transcript, tmp_path, ["docx"])
    doc = docx.Document(str(path))
    body = [p for p in doc.paragraphs if p.style.name != "Heading 1"]
    assert [p.text for p in doc.paragraphs if p.style.name == "Heading 1"] == ["IMU"]
    expected = paragraphs(transcript)
    assert len(body) == len(expected)
    for p, (who, start, _, said) in zip(body, expected):
        bold = [r.text for r in p.runs if r.bold]
        assert bold == [who]
        assert p.text == f"[{int(start) // 3600:02d}:{int(start) // 60 % 60:02d}:{int(start) % 60:02d}] {who}: {said}"
    assert docx.Document(io.BytesIO(WRITERS["docx"].render(transcript))).paragraphs[1].text == body[0].text


def test_colours_come_from_the_name_alone():
    names = ["Tahir", "Mudaqiq", "Tolibov", "Pannier", "Unknown 1", "SPEAKER_00"]
    slots = [colour_index(n) for n in names]
    assert all(0 <= s < len(PALETTE) for s in slots)
    assert [colour_index(n.upper()) for n in names] == slots  # case and spacing do not matter
    assert colour_index(" Bruce   Pannier ") == colour_index("bruce pannier")
    # numbered speakers and the demo's four panelists all get colours of their own
    assert len({colour_index(f"SPEAKER_{i:02d}") for i in range(len(PALETTE))}) == len(PALETTE)
    assert len({colour_index(f"Unknown {i}") for i in range(1, len(PALETTE) + 1)}) == len(PALETTE)
    assert len(set(slots[:4])) == 4
    # pinned: a name keeps its colour across releases as well as across indexes
    assert slots[:4] == [1, 3, 0, 6]


def test_podcast_json_by_word(transcript):  # noqa: F811
    import json

    doc = json.loads(WRITERS["podcast"].format(transcript, ExportOptions(podcast_words=True)))
    words = [w for s in transcript.segments for w in s.words]
    assert doc["version"] == "1.0.0" and len(doc["segments"]) == len(words)
    for entry, w in zip(doc["segments"], words):
        assert entry == {"speaker": w.speaker, "startTime": round(w.start, 3), "endTime": round(w.end, 3),
                         "body": w.word}


def test_docx_bytes_do_not_depend_on_when_they_were_written(transcript, monkeypatch):  # noqa: F811
    import time

    first = WRITERS["docx"].render(transcript)
    later = time.time() + 3 * 3600  # the zip entries and core properties would carry this time
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(time, "localtime", lambda t=None: time.gmtime(later if t is None else t))
    assert WRITERS["docx"].render(transcript) == first
