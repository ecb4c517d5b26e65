"""openai-whisper with word timestamps and its hallucination guards on.

Weights come from whisper's download folder (~/.cache/whisper, or --model-dir) or from a checkpoint file
(--model PATH). The recording is fed chunk by chunk, cut at pauses (see chunks.py): long silences never
reach the model, where it would invent text, and progress can be reported between chunks.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..audio import release
from ..errors import ModelError, UsageError, WeightsUnusable, import_extra
from ..types import ProgressHook, Word, WordsHook
from . import AsrEngineBase, AsrResult, build_segments, chunks

# whisper's own defaults, spelled out because the silence filter below repeats its rule.
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
# Skip silences longer than this around words that look hallucinated (needs word timestamps).
HALLUCINATION_SILENCE = 2.0
DOWNLOAD_TIMEOUT = 20.0
# One whisper window is 30 s; chunks of about that, cut at pauses, keep words whole at window edges.
CHUNK_TARGET, CHUNK_MAX = 30.0, 60.0


@dataclass(frozen=True)
class Resolved:
    spec: str  # what whisper.load_model gets: an official name or a checkpoint path
    label: str  # the name, or the checkpoint's file stem
    root: str  # download folder
    official: bool
    available: bool  # weights are on this machine


def _device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"{{device}} {device}: no CUDA GPU is available here (use {{device}} cpu)",
                         arguments=("device",))
    return device


def default_root() -> str:
    # The folder whisper.load_model itself uses when given no download_root.
    cache = os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    return os.path.join(cache, "whisper")


def resolve_model(model: str | None, model_dir: str | None, device: str | None) -> Resolved:
    """Which weights `model` means and whether they are here, without downloading or loading anything."""
    whisper = _whisper()

    root = str(Path(model_dir).expanduser()) if model_dir else default_root()
    if model is None:
        model = "turbo" if _device(device).startswith("cuda") else "base"
    path = Path(model).expanduser()
    if path.is_file():
        return Resolved(str(path), path.stem, root, False, True)
    if model in whisper._MODELS:
        cached = Path(root) / os.path.basename(whisper._MODELS[model])
        return Resolved(model, model, root, True, cached.is_file())
    if path.is_dir():
        raise ModelError(f"whisper model {model}: is a folder, not a checkpoint file; pass {{model}} PATH to a .pt "
                         f"file", arguments=("model",))
    raise ModelError(
        f"whisper model {model!r} is neither a model name ({', '.join(whisper.available_models())}) "
        "nor a checkpoint file; pass --model PATH to a checkpoint or use --asr sphinx"
    )


def missing_weights_error(r: Resolved, cause: str) -> ModelError:
    return (WeightsUnusable if r.official else ModelError)(
        f"whisper model {r.label}: {cause}; "
        "pass --model PATH to a whisper checkpoint, or use --asr sphinx (offline, English)"
    )


def _fetch(r: Resolved) -> None:
    """Download official weights with a timeout (whisper's own download can wait forever)."""
    import whisper

    url = whisper._MODELS[r.spec]
    target = Path(r.root) / os.path.basename(url)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as src:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as out:
                    while block := src.read(1 << 20):
                        out.write(block)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or e
        raise missing_weights_error(r, f"not in {r.root} and cannot be downloaded ({reason})") from None


def spellings(hotwords: tuple[str, ...], speaker_names: tuple[str, ...]) -> tuple[str, ...]:
    """The words to favour: the user's, then the enrolled speakers' names, each once."""
    return tuple(dict.fromkeys((*hotwords, *speaker_names)))


def initial_prompt(prompt: str | None, hotwords: tuple[str, ...]) -> str | None:
    """openai-whisper has no hotwords: they join the prompt, where whisper learns their spelling."""
    parts = [p for p in (prompt, ", ".join(hotwords) + "." if hotwords else None) if p]
    return " ".join(parts) or None


def _alignment_heads(model, checkpoint: str) -> None:
    """whisper.load_model uses the official alignment heads only for official names; a checkpoint that carries
    its own (a converted model does) gets those, so word times come from the heads that really align."""
    import torch

    heads = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=True).get("alignment_heads")
    if not heads:
        return
    dims = model.dims
    mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


def _whisper():
    return import_extra("whisper", "openai-whisper", "whisper")


def _language(language: str | None) -> str | None:
    _whisper()
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    if language is None:
        return None
    code = language.lower()
    code = code if code in LANGUAGES else TO_LANGUAGE_CODE.get(code)
    if code is None:
        raise UsageError(f"whisper does not know the language {language!r} (use a code such as en, ar, uz)")
    return code


class WhisperAsr(AsrEngineBase):
    # torch releases the GIL while it computes: a thread beside the diarizer is enough.
    holds_gil: ClassVar[bool] = False
    options: ClassVar[frozenset[str]] = frozenset(
        {"model", "model_dir", "device", "prompt", "hotwords", "speaker_names", "decode_options"}
    )

    @classmethod
    def unavailable(cls, *, model: str | None = None, model_dir: str | None = None, device: str | None = None,
                    language: str | None = None, task: str = "transcribe", **_: Any) -> str | None:
        language = _language(language)
        r = resolve_model(model, model_dir, device)
        if not r.available:
            return f"whisper model {r.label} is not downloaded in {r.root}"
        if r.label.endswith(".en") and (task == "translate" or language not in (None, "en")):
            return f"whisper model {r.label} is English-only"
        return None

    def __init__(
        self,
        *,
        model: str | None = None,
        model_dir: str | None = None,
        language: str | None = None,
        task: str = "transcribe",
        device: str | None = None,
        prompt: str | None = None,
        hotwords: tuple[str, ...] = (),
        speaker_names: tuple[str, ...] = (),
        decode_options: dict[str, Any] | None = None,
    ) -> None:
        import whisper

        task = task or "transcribe"
        if task not in ("transcribe", "translate"):
            raise UsageError(f"unknown task {task!r}: use transcribe or translate")
        language = _language(language)
        self.device = _device(device)
        resolved = resolve_model(model, model_dir, self.device)
        if resolved.official and not resolved.available:
            _fetch(resolved)
        try:
            self._model = whisper.load_model(resolved.spec, device=self.device, download_root=resolved.root)
        except (urllib.error.URLError, TimeoutError) as e:
            raise missing_weights_error(
                resolved, f"not in {resolved.root} and cannot be downloaded ({_one_line(e)})"
            ) from None
        except Exception as e:  # torch.load / state-dict errors come in many types; all mean "not usable"
            error = WeightsUnusable if resolved.official else ModelError
            raise error(f"cannot load whisper model {resolved.spec}: {_one_line(e)}") from None
        if not resolved.official:
            _alignment_heads(self._model, resolved.spec)
        if not self._model.is_multilingual and (task == "translate" or language not in (None, "en")):
            raise UsageError(f"whisper model {resolved.label} is English-only: it cannot {task} {language or ''}".strip())
        self.name = f"whisper:{resolved.label}"
        self.language = language
        self.task = task
        self._options: dict[str, Any] = dict(
            verbose=None,  # whisper prints nothing and shows no progress bar
            task=task,
            word_timestamps=True,
            condition_on_previous_text=False,
            fp16=self.device.startswith("cuda"),
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            logprob_threshold=LOGPROB_THRESHOLD,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            hallucination_silence_threshold=HALLUCINATION_SILENCE,
            initial_prompt=initial_prompt(prompt, spellings(hotwords, speaker_names)),
            **(decode_options or {}),
        )
        self._lock = threading.Lock()

    def _result_language(self, detected: str | None) -> str:
        if self.task == "translate":
            return "en"  # the text is English whatever was spoken
        return self.language or detected or "en"

    def transcribe(self, audio: np.ndarray, *, hook: ProgressHook | None = None,
                   on_words: WordsHook | None = None) -> AsrResult:
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = len(samples) / chunks.SAMPLE_RATE
        if hook:
            hook("asr", 0.0, duration)
        parts = chunks.chunk(samples, target=CHUNK_TARGET, max_len=CHUNK_MAX)
        language = self.language
        groups: list[tuple[list[Word], str]] = []
        with self._lock:
            for c in parts:
                # A copy: whisper hands the array to torch, which warns about read-only (mapped) memory.
                piece = np.array(samples[c.start : c.end])
                release(samples)
                out = self._model.transcribe(piece, language=language, **self._options)
                # Detect once, on the first chunk with speech, so every chunk is decoded in one language.
                language = language or out.get("language")
                for seg in out["segments"]:
                    if seg["no_speech_prob"] > NO_SPEECH_THRESHOLD and seg["avg_logprob"] < LOGPROB_THRESHOLD:
                        continue
                    words = [
                        Word(w["word"], c.start_s + w["start"], c.start_s + w["end"], None, w.get("probability"))
                        for w in seg.get("words", ())
                    ]
                    groups.append((words, seg["text"]))
                    if on_words and words:
                        on_words(words)
                if hook:
                    hook("asr", c.end_s, duration)
        if hook:
            hook("asr", duration, duration)
        return AsrResult(self._result_language(language), build_segments(groups, duration))
