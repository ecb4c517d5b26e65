"""A transcript file is untrusted input: parsed with a nesting limit, checked against the published JSON
Schema (transcript.schema.json, majlis.transcript/1), then against the rules a schema cannot say.

Every failure is one TranscriptError naming the JSON path and the rule broken, so the CLI prints one line
(`panel.json: $.segments[3].start: not a finite number (NaN)`) instead of a traceback or, worse, a
transcript accepted with times out of order or a speaker called "None".
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

from .errors import TranscriptError

SCHEMA_FILE = "transcript.schema.json"
# Times may pass `duration` by this much: diarizer turns end on 10 ms frames, and times have 3 decimals.
SLACK = 0.011
_EPS = 1e-6  # float noise in comparisons of times rounded to 3 decimals
# A transcript nests five deep (document, segments, segment, words, word). Python's parser stops at its
# recursion limit (about 1,000 levels, in well under a millisecond even for 200,000 nested arrays), and the
# schema refuses anything nested deeper than a transcript where majlis reads it.
NESTING = "nested far deeper than a transcript (5 levels) can be"


def schema() -> dict[str, Any]:
    """The published JSON Schema of majlis.transcript/1."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator():
    import fastjsonschema  # compiled once per process, on the first transcript read

    return fastjsonschema.compile(schema())


def parse(text: str) -> Any:
    """JSON with a nesting limit. NaN, Infinity and 1e400 parse (as Python does) and are refused by check()."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TranscriptError(f"not JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise TranscriptError(NESTING) from None


def check(data: Any) -> None:
    """TranscriptError naming the JSON path and the rule, unless `data` is a valid majlis.transcript/1."""
    import fastjsonschema

    if not isinstance(data, dict):
        raise TranscriptError(f"$: not a majlis transcript (a JSON {type(data).__name__}, not an object)")
    if data.get("schema") != "majlis.transcript/1":
        raise TranscriptError(f"$.schema: not a majlis.transcript/1 transcript (schema is {data.get('schema')!r})")
    try:
        _validator()(data)
    except fastjsonschema.JsonSchemaValueException as e:
        where = "$" + e.name[len("data"):] if e.name.startswith("data") else e.name
        said = e.message[len(e.name):].strip() if e.message.startswith(e.name) else e.message
        raise TranscriptError(f"{where}: {said} (schema rule: {e.rule})") from None
    _check_times(data)


def _finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise TranscriptError(f"{where}: not a finite number ({value!r})")
    return value


def _span(d: dict, where: str, lo: float, hi: float, what: str) -> tuple[float, float]:
    start = _finite(d["start"], f"{where}.start")
    end = _finite(d["end"], f"{where}.end")
    if end + _EPS < start:
        raise TranscriptError(f"{where}: ends ({end:g}) before it starts ({start:g})")
    if start + _EPS < lo or end - _EPS > hi:
        raise TranscriptError(f"{where}: {start:g}-{end:g} s is outside {what} ({lo:g}-{hi:g} s)")
    return start, end


def _check_times(data: dict) -> None:
    """The rules of the README the schema cannot say: finite, ordered, inside [0, duration] and words
    inside their segment."""
    duration = _finite(data["duration"], "$.duration")
    limit = duration + SLACK
    previous = 0.0
    for i, seg in enumerate(data["segments"]):
        where = f"$.segments[{i}]"
        start, end = _span(seg, where, 0.0, limit, "the recording")
        if start + _EPS < previous:
            raise TranscriptError(f"{where}.start: {start:g} s is before the previous segment's start "
                                  f"({previous:g} s): segments must be in time order")
        previous = start
        last_word = start
        for j, w in enumerate(seg.get("words", ())):
            w_where = f"{where}.words[{j}]"
            w_start, _ = _span(w, w_where, start, end, "its segment")
            if w_start + _EPS < last_word:
                raise TranscriptError(f"{w_where}.start: {w_start:g} s is before the previous word's start "
                                      f"({last_word:g} s): words must be in time order")
            last_word = w_start
            if "probability" in w:
                _finite(w["probability"], f"{w_where}.probability")
    for i, turn in enumerate(data.get("turns", ())):
        _span(turn, f"$.turns[{i}]", 0.0, limit, "the recording")
    for name, score in data.get("speaker_scores", {}).items():
        _finite(score, f"$.speaker_scores[{json.dumps(name, ensure_ascii=False)}]")
