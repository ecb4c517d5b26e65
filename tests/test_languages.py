"""--language: codes and names whisper knows become codes; anything else is one line listing the valid codes,
said before any model loads."""

from __future__ import annotations

import pytest

from majlis.errors import UsageError
from majlis.languages import ALIASES, LANGUAGES, language_code
from test_cli import PANEL, assert_one_line_error, majlis


def test_the_table_is_whispers():
    tokenizer = pytest.importorskip("whisper.tokenizer")
    assert LANGUAGES == tokenizer.LANGUAGES
    assert {name: code for code, name in LANGUAGES.items()} | ALIASES == tokenizer.TO_LANGUAGE_CODE


@pytest.mark.parametrize("given,code", [("en", "en"), ("UZ", "uz"), ("English", "en"), ("uzbek", "uz"),
                                        ("Mandarin", "zh"), (" ar ", "ar"), ("yue", "yue"), (None, None)])
def test_codes_and_names(given, code):
    assert language_code(given) == code


@pytest.mark.parametrize("given", ["xx", "", "eng", "klingon"])
def test_unknown_languages(given):
    with pytest.raises(UsageError, match="unknown language code.*valid codes: af, am, ar"):
        language_code(given)


def test_cli_says_the_code_is_unknown_before_loading_models(tmp_path):
    # With --asr whisper and no model on disk, the old message was about the missing model.
    proc = majlis("transcribe", str(PANEL), "--asr", "whisper", "--model", str(tmp_path / "none.pt"),
                  "--language", "xx", "--out", str(tmp_path))
    assert_one_line_error(proc, "--language xx", "unknown language code", "en, eo" if "eo" in LANGUAGES else "el, en")
    assert list(tmp_path.iterdir()) == []
