"""The editor of `majlis serve --edit` in headless Chromium (as tests/test_web_browser.py) against a real server
on a real index: fix a word, give three words to another speaker, undo; after each step the transcript JSON,
the SRT, the VTT and a search must all say the same thing."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from test_index import truth_transcript
from test_web_browser import ARGS, CHROMIUM, pytestmark  # noqa: F401  (the same skip rule and marks)
from majlis import edits
from majlis.files import read_transcript
from majlis.search.index import Index
from majlis.export.writers import WRITERS, ExportOptions, parse_formats, relative_url, write_transcript

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "browser-test-token-0123"


class EditServer:
    def __init__(self, index: Index, library=None):
        import uvicorn

        from majlis.cli.serve import bind
        from majlis.web.app import create_app
        from majlis.web.editor import EditSettings, with_library

        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        settings = EditSettings(token=TOKEN, who="browser")
        app = create_app(index, editor=settings if library is None else with_library(settings, library))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def site(tmp_path, request):
    from majlis.voices import VoiceLibrary

    out = tmp_path / "out"
    panel = truth_transcript(title="The Islamic Movement of Uzbekistan")
    write_transcript(panel, out, parse_formats("json,srt,vtt,txt"))
    shutil.copy(ROOT / "audio" / "panel.mp3", out / "panel.mp3")
    index = Index(tmp_path / "index", create=True)
    index.add([panel], transcript_paths={"panel": out / "panel.json"})
    library = VoiceLibrary(tmp_path / "voices") if getattr(request, "param", None) == "library" else None
    server = EditServer(index, library)
    yield {"out": out, "index": index, "url": server.url, "library": library}
    server.stop()
    index.close()


@pytest.fixture
def page(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        # The browser logs each refused save (409, 403) itself; those are the point of two tests here.
        expected = ("status of 409", "status of 403")
        pg.on("console", lambda m: errors.append(m.text)
              if m.type == "error" and not any(x in m.text for x in expected) else None)
        yield pg
        context.close()
        browser.close()
        assert errors == [], errors  # no script errors, no CSP violations


def search(site, query: str) -> list[dict]:
    with urllib.request.urlopen(site["url"] + "/api/search?" + urllib.parse.urlencode({"q": query})) as r:
        return json.loads(r.read())


def check_files(site) -> dict:
    """The JSON as saved; the SRT and VTT beside it must be exactly what that JSON renders."""
    out = site["out"]
    t = read_transcript(out / "panel.json")
    options = ExportOptions(audio_url=relative_url(t.audio, out))
    for ext in ("srt", "vtt", "txt"):
        assert (out / f"panel.{ext}").read_bytes() == WRITERS[ext].render(t, options), ext
    return json.loads((out / "panel.json").read_text(encoding="utf-8"))


def words(data: dict, seg: int) -> list[tuple[str, str]]:
    return [(w["word"], w["speaker"]) for w in data["segments"][seg]["words"]]


def test_fix_a_word_reassign_three_words_undo(page, site):
    original = check_files(site)
    seg2, seg3 = original["segments"][2], original["segments"][3]
    assert seg2["words"][4]["word"] == "Zabul" and seg3["speaker"] == "Mudaqiq"
    zabul = len(search(site, "Zabul"))  # said elsewhere in the panel too
    page.goto(site["url"] + "/episode/panel#edit=" + TOKEN)
    page.wait_for_selector("#edit-bar")
    assert "#edit=" not in page.url  # the token is taken out of the address bar

    # 1. fix a word: click it, type, Esc cancels, Enter saves
    page.click('#seg-2 .w[data-i="4"]')
    page.fill(".w-edit", "Nothing")
    page.press(".w-edit", "Escape")
    assert page.locator(".w-edit").count() == 0
    assert page.inner_text('#seg-2 .w[data-i="4"]') == "Zabul"
    page.click('#seg-2 .w[data-i="4"]')
    page.fill(".w-edit", "Zaboul")
    with page.expect_navigation():
        page.press(".w-edit", "Enter")
    page.wait_for_selector("#edit-bar")
    assert page.inner_text('#seg-2 .w[data-i="4"]') == "Zaboul"
    fixed = check_files(site)
    w_old, w_new = seg2["words"][4], fixed["segments"][2]["words"][4]
    assert (w_new["word"], w_new["start"], w_new["end"]) == ("Zaboul", w_old["start"], w_old["end"])
    assert "Zaboul" in (site["out"] / "panel.srt").read_text() and "Zaboul" in (site["out"] / "panel.vtt").read_text()
    assert [(h["episode"], h["speaker"]) for h in search(site, "Zaboul")] == [("panel", "Tahir")]
    assert len(search(site, "Zabul")) == zabul - 1

    # 2. select the first three words of Mudaqiq's turn and give them to Pannier
    page.evaluate("""() => {
        const ws = document.querySelectorAll('#seg-3 .w');
        const r = document.createRange();
        r.setStartBefore(ws[0]);
        r.setEndAfter(ws[2]);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(r);
    }""")
    page.wait_for_function("() => !document.getElementById('edit-give').disabled")
    assert page.inner_text("#edit-give") == "Give 3 words to"
    page.select_option("#edit-speaker", "Pannier")
    with page.expect_navigation():
        page.click("#edit-give")
    page.wait_for_selector("#edit-bar")
    given = check_files(site)
    assert words(given, 3) == [(w["word"], "Pannier") for w in seg3["words"][:3]]
    assert given["segments"][3]["speaker"] == "Pannier" and given["segments"][4]["speaker"] == "Mudaqiq"
    assert [w["start"] for w in given["segments"][3]["words"]] == [w["start"] for w in seg3["words"][:3]]
    assert page.inner_text("#seg-3 .seg-head .who") == "Pannier"
    srt = (site["out"] / "panel.srt").read_text()
    assert "Pannier" in srt and "Zaboul" in srt
    assert [h["speaker"] for h in search(site, '"When the Taliban"')] == ["Pannier"]

    # 3. undo: the words are Mudaqiq's again, the fixed word stays fixed
    assert "words to Pannier" in page.inner_text("#edit-undo")
    with page.expect_navigation():
        page.click("#edit-undo")
    page.wait_for_selector("#edit-bar")
    undone = check_files(site)
    assert undone == fixed
    assert page.inner_text("#seg-3 .seg-head .who") == "Mudaqiq"
    assert [h["speaker"] for h in search(site, '"When the Taliban"')] == ["Mudaqiq"]
    assert [(h["episode"], h["speaker"]) for h in search(site, "Zaboul")] == [("panel", "Tahir")]
    assert "Zaboul" in (site["out"] / "panel.vtt").read_text()

    # the history has all three, and one more undo takes the fix back too
    history = edits.read_history(site["out"] / "panel.json")
    assert [(h["op"], h["who"]) for h in history] == [("fix_word", "browser"), ("reassign", "browser"),
                                                        ("undo", "browser")]
    with page.expect_navigation():
        page.click("#edit-undo")
    page.wait_for_selector("#edit-bar")
    assert check_files(site) == original
    assert search(site, "Zaboul") == [] and len(search(site, "Zabul")) == zabul
    assert page.is_disabled("#edit-undo")


def test_a_stale_page_gets_409_and_says_so(page, site):
    page.goto(site["url"] + "/episode/panel#edit=" + TOKEN)
    page.wait_for_selector("#edit-bar")
    # someone else saves first
    path = site["out"] / "panel.json"
    edits.save(path, {"op": "rename_speaker", "old": "Tolibov", "new": "Ahmad Tolibov"},
               version=edits.current_version(path), who="other", index=site["index"])
    before = path.read_bytes()
    page.click('#seg-2 .w[data-i="4"]')
    page.fill(".w-edit", "Zaboul")
    page.press(".w-edit", "Enter")
    page.wait_for_selector("#edit-reload")
    assert "reload" in page.inner_text("#edit-status")
    assert path.read_bytes() == before


def test_without_the_token_the_page_asks_for_it(page, site):
    page.goto(site["url"] + "/episode/panel")
    page.wait_for_selector("#edit-bar")
    assert page.is_visible("#edit-token")
    page.click('#seg-2 .w[data-i="4"]')
    page.fill(".w-edit", "Zaboul")
    page.press(".w-edit", "Enter")
    page.wait_for_function("() => document.getElementById('edit-status').classList.contains('bad')")
    assert "token" in page.inner_text("#edit-status")
    assert "Zabul" in (site["out"] / "panel.json").read_text()


def test_split_merge_and_rename_from_the_page(page, site):
    path = site["out"] / "panel.json"
    original = check_files(site)
    n = len(original["segments"])
    page.goto(site["url"] + "/episode/panel#edit=" + TOKEN)
    page.wait_for_selector("#edit-bar")

    # split Tahir's turn 2 before its fifth word
    page.click('#seg-2 .w[data-i="4"]')
    with page.expect_navigation():
        page.click(".w-tools button")
    page.wait_for_selector("#edit-bar")
    data = check_files(site)
    assert len(data["segments"]) == n + 1
    assert data["segments"][3]["words"][0]["word"] == "Zabul" and data["segments"][3]["speaker"] == "Tahir"

    # merge it back
    with page.expect_navigation():
        page.click("#seg-2 .seg-tools .merge")
    page.wait_for_selector("#edit-bar")
    assert check_files(site)["segments"] == original["segments"]

    # rename Tolibov everywhere: click the name, type, Enter
    page.locator(".seg-head .who", has_text="Tolibov").first.click()
    page.fill(".who-edit", "Ahmad Tolibov")
    with page.expect_navigation():
        page.press(".who-edit", "Enter")
    page.wait_for_selector("#edit-bar")
    data = check_files(site)
    assert "Tolibov" not in {s["speaker"] for s in data["segments"]}
    assert "Ahmad Tolibov" in {s["speaker"] for s in data["segments"]}
    assert page.locator(".legend .who", has_text="Ahmad Tolibov").count() == 1
    assert "Ahmad Tolibov" in (site["out"] / "panel.vtt").read_text()
    assert {h["speaker"] for h in search(site, '"executed under Sharia law"')} == {"Ahmad Tolibov"}
    assert [h["op"] for h in edits.read_history(path)] == ["split", "merge", "rename_speaker"]


@pytest.mark.parametrize("site", ["library"], indirect=True)
def test_a_renamed_voice_is_learned_into_the_library_from_the_page(page, site):
    library = site["library"]
    library.add("Library Person", [{"source": "clip.wav", "seconds": 3.0, "embedding": [1.0] + [0.0] * 255}])
    page.goto(site["url"] + "/episode/panel#edit=" + TOKEN)
    page.wait_for_selector("#edit-bar")
    # the library's names are offered beside the episode's own
    assert "Library Person" in page.locator("#edit-speaker option").all_text_contents()
    assert page.locator("#edit-offer").count() == 0

    page.locator(".seg-head .who", has_text="Tolibov").first.click()
    page.fill(".who-edit", "Sirojiddin Tolibov")
    with page.expect_navigation():
        page.press(".who-edit", "Enter")
    page.wait_for_selector("#edit-offer")
    assert "Learn Sirojiddin Tolibov's voice" in page.inner_text("#edit-offer")
    page.click("#edit-learn")
    page.locator("#edit-offer", has_text="version").or_(page.locator("#edit-offer.bad")).wait_for(timeout=120_000)
    assert "version 2" in page.inner_text("#edit-offer")
    assert [p.name for p in library.people()] == ["Library Person", "Sirojiddin Tolibov"]
    learned = next(p for p in library.people() if p.name == "Sirojiddin Tolibov")
    assert learned.sources == ("panel:Sirojiddin Tolibov",) and learned.seconds > 5

    # offered once: a reload does not offer it again, and the new name is now the library's
    page.reload()
    page.wait_for_selector("#edit-bar")
    assert page.locator("#edit-offer").count() == 0
    assert "Sirojiddin Tolibov" in page.locator("#edit-speaker option").all_text_contents()
