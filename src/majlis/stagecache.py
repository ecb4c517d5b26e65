"""The stage cache that batch mode and `majlis transcribe` share: <out>/.majlis/cache/<stage>/<key>.json, one
file per finished stage (ASR, diarization, naming), keyed by content (batch/worker.py's docstring lists the
keys). Each stage's result goes in the moment it is finished, so a run interrupted (Ctrl-C, kill) and started
again with the same arguments redoes only the stages that had not finished."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

from .files import atomic_write_text, digest, file_sha256
from .types import ProgressHook

log = logging.getLogger("majlis")

STATE_DIR = ".majlis"  # under the output folder: the stage caches, and batch mode's ledger
STAGES = ("asr", "diarize", "naming")


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
    # diarize/2: the builtin diarizer's turn edges come from segmentation-3.0, and it says where one voice is alone.
    # diarize/3: it makes one speaker of two whose CAM++ prints are one person's. diarize/4: it clusters
    # CAM++ windows, not resemblyzer's. diarize/5: the overlap model every 5 s, and on long recordings
    # only the windows near a change beyond every other one.
    dia_key = digest("diarize/5", sha, names["diarizer"], o.pipeline, o.num_speakers, o.min_speakers, o.max_speakers)
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


def _record_class(stage: str):
    """The record a stage makes; each serialises itself (to_dict, from_dict)."""
    if stage == "asr":
        from .asr import AsrResult

        return AsrResult
    if stage == "diarize":
        from .diarize import Diarization

        return Diarization
    from .speakers import Naming

    return Naming


class Direct:
    """pipeline.run_stages' default: every stage computed, nothing kept. A cache overrides these."""

    def decode(self, path: str | Path, compute: Callable[[], Any]) -> Any:
        return compute()

    def open(self, path: str | Path, names: Mapping[str, str], options: Any) -> None:
        """Called once the recording is decoded and the engines are known: the stage keys can be made."""

    def run(self, stage: str, compute: Callable[[], Any]) -> Any:
        return compute()


class StageCache(Direct):
    """Stages taken from <out_dir>/.majlis/cache when an earlier run finished them (unless `force`), else
    computed and stored there at once. `speakers_hash`: the naming fingerprint, when already known."""

    def __init__(self, out_dir: str | Path, *, force: bool = False, hook: ProgressHook | None = None,
                 speakers_hash: str | None = None):
        self.root = Path(out_dir) / STATE_DIR / "cache"
        self.force, self.hook, self.speakers_hash = force, hook, speakers_hash
        self.sha: str | None = None
        self.keys: dict[str, str] = {}

    def open(self, path: str | Path, names: Mapping[str, str], options: Any) -> None:
        if self.sha is None:
            self.sha = file_sha256(path)
        if self.speakers_hash is None:
            from .voices import naming_fingerprint

            self.speakers_hash = naming_fingerprint(options)
        self.keys = dict(zip(STAGES, stage_keys(self.sha, names, options, self.speakers_hash)))

    def run(self, stage: str, compute: Callable[[], Any]) -> Any:
        load = _record_class(stage).from_dict
        key = self.keys[stage]
        entry = self.root / stage / f"{key}.json"
        value = None if self.force else read_cache(entry, load)
        if value is not None:
            self.reused(stage, key)
            return value
        return self.computed(stage, key, lambda: write_cache(entry, compute().to_dict(), load))

    def reused(self, stage: str, key: str) -> None:
        if self.hook and stage != "naming":
            self.hook(stage, 1, 1)  # finished in an earlier run

    def computed(self, stage: str, key: str, compute: Callable[[], Any]) -> Any:
        return compute()
