"""`majlis transcribe` that picks up where it stopped: each stage's result (ASR, diarization, naming) goes into
the same content-addressed cache as batch mode (<out>/.majlis/cache/<stage>/<key>.json, keys in
batch/worker.py) the moment it is finished, so a run interrupted (Ctrl-C, kill) and started again with the same
arguments redoes only the stages that had not finished."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .batch.worker import _dump_asr, _dump_diarization, _dump_naming, _load_asr, _load_diarization, _load_naming
from .batch.ledger import STATE_DIR
from .files import file_sha256
from .stagecache import read_cache, stage_keys, write_cache
from .types import ProgressHook
from .voices import naming_fingerprint

_CODECS = {"asr": (_dump_asr, _load_asr), "diarize": (_dump_diarization, _load_diarization),
           "naming": (_dump_naming, _load_naming)}


def stage_cache(path: str | Path, out_dir: str | Path, *, options: Any, engines: Any, force: bool = False,
                hook: ProgressHook | None = None) -> Callable[[str, Callable[[], Any]], Any]:
    """A `stage` for pipeline.transcribe_file: each stage's value from <out_dir>/.majlis/cache when an earlier
    run finished it (unless `force`), else computed and stored there at once."""
    cache = Path(out_dir) / STATE_DIR / "cache"
    keys = dict(zip(_CODECS, stage_keys(file_sha256(path), engines.describe(), options,
                                        naming_fingerprint(options))))

    def run(name: str, compute: Callable[[], Any]) -> Any:
        dump, load = _CODECS[name]
        entry = cache / name / f"{keys[name]}.json"
        value = None if force else read_cache(entry, load)
        if value is None:
            return write_cache(entry, dump(compute()), load)
        if hook and name != "naming":
            hook(name, 1, 1)  # finished in an earlier run
        return value

    return run
