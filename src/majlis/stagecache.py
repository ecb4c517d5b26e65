"""The stage cache that batch mode and `majlis transcribe` share: <out>/.majlis/cache/<stage>/<key>.json, one
file per finished stage, keyed by content (batch/worker.py's docstring lists the keys)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

from .files import digest
from .files import atomic_write_text

log = logging.getLogger("majlis")


def _decoding(options) -> list:
    """The ASR options beyond model, language and task that change its words; only those set, so that a key
    made before they existed still names the same work."""
    from .pipeline import asr_choice

    choice = asr_choice(options)
    shaping = ("compute_type", "beam_size", "vad", "prompt", "hotwords", "speaker_names")
    return [[k, choice[k]] for k in shaping if choice[k] not in (None, ())]


def stage_keys(sha: str, names: Mapping[str, str], o: Any, speakers_hash: str) -> tuple[str, str, str]:
    """The asr, diarize and naming cache keys (batch/worker.py's docstring says what each holds)."""
    asr_key = digest("asr/1", sha, names["asr"], o.model, o.language, o.task, *_decoding(o))
    dia_key = digest("diarize/1", sha, names["diarizer"], o.pipeline, o.num_speakers, o.min_speakers, o.max_speakers)
    name_key = digest("naming/1", dia_key, speakers_hash, sorted(dict(o.names).items()), o.match_threshold)
    return asr_key, dia_key, name_key


def read_cache(path: Path, load: Callable[[Any], Any]) -> Any | None:
    """A stage's cached value, or None when there is none (or it cannot be read: then it is recomputed)."""
    if not path.exists():
        return None
    try:
        return load(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        log.warning(f"{path}: unreadable cache entry, recomputing")
        return None


def write_cache(path: Path, data: Any, load: Callable[[Any], Any]) -> Any:
    """Write a stage's output whole; the value used downstream is the one read back from JSON, so a fresh run
    and a resumed one produce byte-identical transcripts."""
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
    return load(json.loads(json.dumps(data)))
