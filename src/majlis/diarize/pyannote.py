"""pyannote.audio 4 speaker diarization (community-1 by default): the better engine when its weights are here.

The pipeline is gated on Hugging Face: it loads from a local folder (config.yaml + sub-models), from the HF
cache, or is downloaded once with a token. Telemetry is switched off before pyannote is imported.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, release
from ..errors import ModelError, import_extra
from ..types import ProgressHook, Turn
from . import Diarization, DiarizerBase

DEFAULT_PIPELINE = "pyannote/speaker-diarization-community-1"


def disable_telemetry() -> None:
    # pyannote.audio.telemetry reads this when first imported and sends usage metrics unless it says false.
    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
    try:
        from pyannote.audio.telemetry import set_telemetry_metrics
    except ImportError:
        return
    set_telemetry_metrics(False)


def resolve_token(hf_token: str | None) -> str | None:
    """--hf-token, else HF_TOKEN, else the token `huggingface-cli login` stored."""
    if hf_token or os.environ.get("HF_TOKEN"):
        return hf_token or os.environ.get("HF_TOKEN")
    try:
        from huggingface_hub import get_token
    except ImportError:
        return None
    return get_token() or None


def is_local(pipeline: str) -> bool:
    return Path(pipeline).expanduser().exists()


def _explain(pipeline: str, cause: str) -> str:
    if is_local(pipeline):
        return f"cannot load pyannote pipeline from {pipeline}: {cause} (or use --diarizer builtin)"
    return (
        f"cannot load pyannote pipeline {pipeline!r}: {cause}. It is gated on Hugging Face: accept its "
        f"conditions at https://hf.co/{pipeline}, then pass a token with --hf-token or HF_TOKEN, "
        "or use --diarizer builtin (offline, no token)"
    )


def cached_snapshot(repo_id: str) -> Path | None:
    """The HF-cache folder holding the pipeline's config.yaml, found offline; None when not cached."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.yaml")
    except Exception:  # a malformed repo id is simply "not cached"
        return None
    return Path(found).parent if isinstance(found, str) else None


def _load(source: str, token: str | None):
    from pyannote.audio import Pipeline

    # pyannote prints download advice to stdout, huggingface_hub logs every retry and both warn freely:
    # the library stays quiet and the cause goes into one line.
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Pipeline.from_pretrained(source, token=token)
    finally:
        hub_log.setLevel(level)


_HUB_CAUSES = {  # huggingface_hub's exceptions, most specific first, in words
    "GatedRepoError": "this token has no access to the gated model",
    "RepositoryNotFoundError": "no such model on the Hub, or no access to it with this token",
    "LocalEntryNotFoundError": "not downloaded yet and the Hugging Face Hub cannot be reached",
    "OfflineModeIsEnabled": "not downloaded yet and HF_HUB_OFFLINE is set",
}


def _cause(e: BaseException, limit: int = 160) -> str:
    for klass in type(e).__mro__:
        if klass.__name__ in _HUB_CAUSES:
            return _HUB_CAUSES[klass.__name__]
    text = str(e).strip()
    line = f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__
    return line if len(line) <= limit else line[: limit - 1].rstrip(" .") + "…"


class PyannoteDiarizer(DiarizerBase):
    @classmethod
    def unavailable(cls, *, pipeline: str | None = None, hf_token: str | None = None, **choice) -> str | None:
        return unavailable_reason(pipeline, hf_token)

    def __init__(self, pipeline: str | None = None, *, hf_token: str | None = None, device: str | None = None):
        import_extra("pyannote.audio", "pyannote.audio", "pyannote")
        pipeline = str(pipeline or DEFAULT_PIPELINE)
        token = resolve_token(hf_token)
        if is_local(pipeline):
            path = Path(pipeline).expanduser()
            source = str(path)
            self.name = "pyannote:" + (path.parent.name if path.is_file() else path.name)
        elif pipeline.startswith(("/", ".", "~")) or pipeline.count("/") > 1 or "\\" in pipeline:
            raise ModelError(f"{pipeline}: no such pipeline folder (give a folder with config.yaml, or a "
                             f"Hugging Face name such as {DEFAULT_PIPELINE})")
        else:
            snapshot = cached_snapshot(pipeline)
            # A cached pipeline loads from its folder: no network round trip, no token needed.
            source = str(snapshot) if snapshot else pipeline
            self.name = "pyannote:" + pipeline
            if not snapshot and not token:  # a download without a token cannot pass the gate: say so now
                raise ModelError(_explain(pipeline, "not downloaded yet and no Hugging Face token"))
        import torch

        disable_telemetry()
        try:
            try:
                loaded = _load(source, token)
            except Exception:
                if source == pipeline or not token:
                    raise
                loaded = _load(pipeline, token)  # an incomplete cached copy: fetch the rest with the token
        except Exception as e:  # hub errors, missing files, bad yaml, checkpoint mismatches: all one line
            raise ModelError(_explain(pipeline, _cause(e))) from None
        if loaded is None:  # from_pretrained's answer to a download it could not make
            raise ModelError(_explain(pipeline, "download failed"))
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            loaded.to(torch.device(device))
        except Exception as e:
            raise ModelError(f"pyannote pipeline cannot run on {device}: {_cause(e)}") from None
        self.device = device
        self._pipeline = loaded

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        hook: ProgressHook | None = None,
    ) -> Diarization:
        import torch

        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = len(samples) / SAMPLE_RATE
        if len(samples) == 0:
            return Diarization((), ())
        # pyannote wants the whole waveform as one writable tensor: a copy of a mapped (read-only) recording.
        waveform = torch.from_numpy(np.array(samples, dtype=np.float32))[None]
        release(samples)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            output = self._pipeline(
                {"waveform": waveform, "sample_rate": SAMPLE_RATE},
                num_speakers=num_speakers,
                min_speakers=min_speakers,
                max_speakers=max_speakers,
                hook=_adapt_hook(hook),
            )
        overlapping = getattr(output, "speaker_diarization", output)  # legacy pipelines give an Annotation
        exclusive = getattr(output, "exclusive_speaker_diarization", None)
        turns = _turns(overlapping, duration)
        excl = _turns(exclusive, duration) if exclusive is not None else _exclusive(turns)
        if hook:
            hook("diarize", 1, 1)
        return Diarization(turns, excl)


def _turns(annotation, duration: float) -> tuple[Turn, ...]:
    out = []
    for segment, _, label in annotation.itertracks(yield_label=True):
        start, end = max(0.0, float(segment.start)), min(duration, float(segment.end))
        if end > start:
            out.append(Turn(str(label), round(start, 3), round(end, 3)))
    return tuple(sorted(out, key=lambda t: (t.start, t.end, t.speaker)))


def _exclusive(turns: tuple[Turn, ...]) -> tuple[Turn, ...]:
    """Overlap-free version for pipelines without one: a later turn takes over where it starts."""
    out: list[Turn] = []
    for t in turns:
        if out and t.start < out[-1].end:
            prev = out.pop()
            if t.start > prev.start:
                out.append(Turn(prev.speaker, prev.start, t.start))
            if prev.end > t.end:  # a turn nested inside a longer one: the longer resumes afterwards
                out.extend([t, Turn(prev.speaker, t.end, prev.end)])
                continue
        out.append(t)
    return tuple(out)


# pyannote's steps, in order, with the share of the work each takes on a CPU.
_STEPS = {"segmentation": (0.0, 0.3), "speaker_counting": (0.3, 0.3), "embeddings": (0.3, 0.95),
          "discrete_diarization": (0.95, 1.0)}


def _adapt_hook(hook: ProgressHook | None):
    """pyannote calls hook(step, artefact, file=..., total=..., completed=...); ours is (stage, done, total)."""
    if hook is None:
        return None

    def adapted(step_name, step_artefact=None, file=None, total=None, completed=None):
        lo, hi = _STEPS.get(step_name, (None, None))
        if lo is None:
            return
        share = completed / total if total and completed is not None else 1.0
        hook("diarize", round(lo + (hi - lo) * min(1.0, share), 4), 1.0)

    return adapted


def unavailable_reason(pipeline: str | None, hf_token: str | None) -> str | None:
    """Why "auto" should not even try pyannote (None: worth a try). Offline and instant."""
    import importlib.util

    pipeline = str(pipeline or DEFAULT_PIPELINE)
    try:  # a missing parent package raises instead of answering None
        installed = importlib.util.find_spec("pyannote.audio") is not None
    except ImportError:
        installed = False
    if not installed:
        return "pyannote.audio is not installed"
    if is_local(pipeline) or cached_snapshot(pipeline) or resolve_token(hf_token):
        return None
    if pipeline.startswith(("/", ".", "~")) or pipeline.count("/") > 1:
        return f"{pipeline}: no such pipeline folder"
    return f"{pipeline} is not in the Hugging Face cache and no token is set (--hf-token or HF_TOKEN)"
