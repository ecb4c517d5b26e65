"""Put people's names on diarizer labels: by hand (--names) and from short voice samples (--speakers DIR).

Enrollment is local: DIR/<Name>.<ext> or DIR/<Name>/*.<ext>, any audio ffmpeg reads. The clips are first
brought to the episode's channel (channel.py: where the episode carries nothing, a phone line's 300-3,400 Hz
band say, the clip is attenuated to match), then embedded with CAM++ (campplus.py). Each diarized speaker
is embedded from its own (overlap-free) detected speech, compared by cosine similarity with every enrolled
voice, and the pairs are chosen by an optimal one-to-one assignment (decision.py). A speaker whose assigned
voice is not similar enough becomes "Unknown 1", "Unknown 2", ... in order of first appearance. The voice
library's voiceprints are CAM++ prints too, except in a library made before prints existed: those are
resemblyzer embeddings, and go through resemblyzer's calibrated decision.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .audio import SAMPLE_RATE, decode, is_audio_path
from .channel import apply_gain, channel_gain, speech_spectrum
from .diarize import Diarization
from .decision import decide, match_prints, split_voices
from .errors import AudioError, UsageError
from .types import Turn

log = logging.getLogger("majlis")

# In naming's cache key with any voices to name from (voices.naming_fingerprint): bump when a change in this
# module can name an episode's speakers differently.
NAMING_VERSION = "naming/4"  # CAM++ prints (decision.match_prints), from clips and the voice library
UNKNOWN = "Unknown"
ENROLL_MIN_SPEECH = 1.0  # seconds of detected speech a clip needs to say anything about a voice
MAX_WINDOWS = 100  # windows averaged per diarized speaker: two minutes of speech make a steady voice print
NAMING_STEP = 120  # frames: naming averages whole voices, so its windows need not overlap


@dataclass(frozen=True)
class Naming:
    mapping: Mapping[str, str]  # diarizer label -> display name (identity when nothing is known)
    scores: Mapping[str, float] = field(default_factory=dict)  # display name -> similarity (voice matches)
    metadata: Mapping[str, str] = field(default_factory=dict)  # for the transcript (the voice library's version)

    def apply(self, diarization: Diarization) -> Diarization:
        def rename(turns: tuple[Turn, ...]) -> tuple[Turn, ...]:
            return tuple(Turn(self.mapping.get(t.speaker, t.speaker), t.start, t.end) for t in turns)

        return Diarization(rename(diarization.turns), rename(diarization.exclusive), rename(diarization.alone))

    def to_dict(self) -> dict:
        out = {"mapping": dict(self.mapping), "scores": {k: float(v) for k, v in dict(self.scores).items()}}
        return {**out, "metadata": dict(self.metadata)} if self.metadata else out

    @classmethod
    def from_dict(cls, d: dict) -> "Naming":
        return cls(mapping=dict(d["mapping"]), scores=dict(d["scores"]), metadata=dict(d.get("metadata", {})))


_LABEL = re.compile(r"^[^=,]+$")


def parse_names(spec: str) -> dict[str, str]:
    """"SPEAKER_00=Tahir,SPEAKER_01=Mudaqiq" -> {"SPEAKER_00": "Tahir", "SPEAKER_01": "Mudaqiq"}."""
    out: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            raise UsageError(f"--names {spec!r}: empty entry (expected LABEL=Name,LABEL=Name)")
        label, eq, name = (s.strip() for s in part.partition("="))
        if not eq or not label or not name or not _LABEL.match(label) or "=" in name:
            raise UsageError(f"--names: {part.strip()!r} is not LABEL=Name (e.g. SPEAKER_00=Tahir)")
        if label in out:
            raise UsageError(f"--names: {label} is named twice")
        out[label] = name
    return out


def _first_appearance(diarization: Diarization) -> list[str]:
    seen: dict[str, None] = {}
    for t in sorted(diarization.turns or diarization.exclusive, key=lambda t: (t.start, t.end)):
        seen.setdefault(t.speaker, None)
    for t in diarization.exclusive:
        seen.setdefault(t.speaker, None)
    return list(seen)


def name_speakers(
    samples: np.ndarray,
    diarization: Diarization,
    *,
    enrollment_dir: Path | None,
    names: Mapping[str, str],
    threshold: float | None = None,
    voices: Mapping[str, np.ndarray] | None = None,
) -> Naming:
    """Display names for a diarization's labels: `names` first, then voices from `enrollment_dir` (CAM++
    prints, decision.match_prints) or, without it, the voice library's `voices` (name -> unit CAM++ print, or
    resemblyzer embedding for a library older than prints: decision.decide). `threshold`: the cosine a pair
    needs instead of the default (for resemblyzer embeddings, a plain bar instead of the calibration)."""
    labels = _first_appearance(diarization)
    stray = sorted(set(names) - set(labels))
    if stray:
        log.warning("--names: no speaker %s in this recording (it has %s)", ", ".join(stray),
                    ", ".join(labels) or "none")
    mapping = {lab: names.get(lab, lab) for lab in labels}
    # CAM++ prints, which tell people apart without calibrating to the episode: the clips' own, or the voice
    # library's. A library whose samples predate prints has resemblyzer embeddings only (`decide`).
    by_prints = enrollment_dir is not None or (bool(voices) and len(next(iter(voices.values()))) == _print_dim())
    if enrollment_dir is not None:
        # The clips are at hand: heard through this episode's channel first. (The voice library keeps
        # prints, not audio, so its voiceprints are compared as recorded.)
        spans = [(t.start, t.end) for t in diarization.exclusive] or None
        channel = speech_spectrum(samples, spans)
        voices = (enrolled_prints if by_prints else enrollment)(Path(enrollment_dir), channel=channel)
    if not voices:
        return Naming(mapping, {})
    taken = {names[lab] for lab in labels if lab in names}
    candidates = [n for n in voices if n not in taken]
    open_labels = [lab for lab in labels if lab not in names]
    scores: dict[str, float] = {}
    matched: dict[str, str] = {}
    if candidates and open_labels:
        embedded = (_cluster_prints if by_prints else _cluster_voices)(samples, diarization, open_labels)
        rows = [lab for lab in open_labels if embedded[lab] is not None]
        if rows:
            heard = np.stack([embedded[lab] for lab in rows])
            enrolled = np.stack([voices[n] for n in voices])
            cols = [list(voices).index(n) for n in candidates]
            if by_prints:
                pairs = match_prints(heard, enrolled, cols, threshold, rows=rows, names=list(voices))
            else:
                pairs = decide(heard, enrolled, cols, threshold, rows=rows, names=list(voices))
                if threshold is None:
                    pairs += split_voices(heard, enrolled, cols, pairs)
            for i, j in pairs:
                matched[rows[i]] = list(voices)[j]
                scores.setdefault(list(voices)[j], round(float(heard[i] @ enrolled[j]), 4))
    unknown = 0
    for lab in open_labels:
        if lab in matched:
            mapping[lab] = matched[lab]
        else:
            unknown += 1
            mapping[lab] = f"{UNKNOWN} {unknown}"
    return Naming(mapping, scores)


def _cluster_voices(samples: np.ndarray, diarization: Diarization, labels: list[str]) -> dict:
    groups = {lab: [(t.start, t.end) for t in diarization.exclusive if t.speaker == lab] for lab in labels}
    # The word re-check (attribution.hear) reads the same analysis next, and lets it go.
    return voice_embeddings(samples, groups, step=NAMING_STEP, max_windows=MAX_WINDOWS, remember=True)


def _print_dim() -> int:
    from .campplus import DIM

    return DIM


def _cluster_prints(samples: np.ndarray, diarization: Diarization, labels: list[str]) -> dict:
    groups = {lab: [(t.start, t.end) for t in diarization.exclusive if t.speaker == lab] for lab in labels}
    # The word re-check (attribution.hear) reads the same analysis next, and lets it go.
    return speech_prints(samples, groups, remember=True)


def speech_prints(samples: np.ndarray, groups: Mapping, *, min_speech: float = 0.5, remember: bool = False) -> dict:
    """{key: [(start, end), ...] seconds} -> key: CAM++ print of the detected speech inside those spans
    (campplus.prints). Unless `remember`, this is the recording's last use (a voice taken from an episode):
    what diarizing it kept is let go."""
    from . import campplus
    from .voice import analyse

    return campplus.prints(samples, analyse(samples, remember=remember).speech, groups, min_speech=min_speech)


def voice_embeddings(samples: np.ndarray, groups: Mapping, *, step: int | None = None,
                     max_windows: int | None = None, min_speech: float = 0.5, remember: bool = True) -> dict:
    """One unit voice embedding per group of spans ({key: [(start, end), ...]} in seconds; None: all the
    speech): the length-weighted mean of resemblyzer window embeddings, as its embed_utterance averages its
    partials. A group with less than `min_speech` seconds of speech gets None."""
    from .voice import STEP, analyse, embed_windows

    found = analyse(samples, remember=remember)
    out = {}
    for key, spans in groups.items():
        keep = found.speech.copy()
        if spans is not None:
            inside = np.zeros_like(keep)
            for a, b in spans:
                inside[max(0, round(a * 100)) : max(0, round(b * 100))] = True
            keep &= inside
        frames = np.flatnonzero(keep)
        if len(frames) < min_speech * 100:
            out[key] = None
            continue
        emb, _, n = embed_windows(found, frames, step=step or STEP, max_windows=max_windows)
        mean = (emb * n[:, None]).sum(axis=0)
        out[key] = mean / max(float(np.linalg.norm(mean)), 1e-9)
    return out


# ---------------------------------------------------------------------------------------------- enrollment

_cache: dict[tuple, tuple] = {}
_cache_lock = threading.Lock()


def enrollment_clips(folder: Path) -> dict[str, list[Path]]:
    """Name -> clips, from DIR/<Name>.<ext> and DIR/<Name>/*.<ext>."""
    if not folder.exists():
        raise UsageError(f"{folder}: no such speakers folder")
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder (expected <Name>.<ext> voice clips inside)")
    clips: dict[str, list[Path]] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        raise UsageError(f"{folder}: cannot be read ({e.strerror})") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            try:
                inner = sorted(p for p in entry.iterdir() if p.is_file() and is_audio_path(p)
                               and not p.name.startswith("."))
            except OSError as e:
                raise UsageError(f"{entry}: cannot be read ({e.strerror})") from None
            if not inner:
                raise UsageError(f"{entry}: no audio clips for {entry.name} inside")
            clips.setdefault(entry.name, []).extend(inner)
        elif is_audio_path(entry):
            clips.setdefault(entry.stem, []).append(entry)
    if not clips:
        raise UsageError(f"{folder}: no voice clips (expected <Name>.<ext> or <Name>/<clip>.<ext>)")
    return clips


@dataclass(frozen=True)
class _Clip:
    samples: np.ndarray  # decoded, 16 kHz
    spectrum: np.ndarray | None  # speech_spectrum
    embedding: np.ndarray  # as recorded


def enrollment(folder: Path, channel: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Name -> unit voice embedding; clips decoded and embedded once per process for an unchanged folder.
    `channel`: the episode's speech_spectrum; each clip is first matched to it (channel_gain)."""
    clips, recorded = _enrolled_clips(folder)
    if channel is None:
        return recorded
    return {name: _unit_mean([_matched_embedding(c, channel) for c in cs]) for name, cs in clips.items()}


def _enrolled_clips(folder: Path) -> tuple[dict[str, list[_Clip]], dict[str, np.ndarray]]:
    """The folder's clips (name -> _Clip), and name -> unit voice embedding of the clips as recorded."""
    clips = enrollment_clips(folder)
    key_parts = []
    for name, paths in clips.items():
        for p in paths:
            try:
                st = p.stat()
            except OSError as e:
                raise AudioError(f"{p}: cannot be read ({e.strerror})") from None
            key_parts.append((name, str(p.resolve()), st.st_size, st.st_mtime_ns))
    key = tuple(key_parts)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    found = {name: [_clip(p) for p in paths] for name, paths in clips.items()}
    found = found, {name: _unit_mean([c.embedding for c in cs]) for name, cs in found.items()}
    with _cache_lock:
        _cache.clear()  # one enrollment folder per run is the norm; do not grow without bound
        _cache[key] = found
    return found


def _clip(path: Path) -> _Clip:
    samples = decode(path)
    emb = voice_embeddings(samples, {0: None}, min_speech=ENROLL_MIN_SPEECH, remember=False)[0]
    if emb is None:
        raise AudioError(
            f"{path}: too little speech to enroll a voice ({len(samples) / SAMPLE_RATE:.1f} s of audio, "
            f"need at least {ENROLL_MIN_SPEECH:.0f} s of speech)"
        )
    return _Clip(np.asarray(samples, np.float32), speech_spectrum(samples), emb)


def _through_channel(clip: _Clip, channel: np.ndarray | None) -> np.ndarray | None:
    """The clip's samples as heard through the episode's channel; None where the two channels agree (the clip
    as recorded serves)."""
    if channel is None or clip.spectrum is None:
        return None
    gain = channel_gain(channel, clip.spectrum)
    return apply_gain(clip.samples, gain) if (gain < 0).any() else None


def _matched_embedding(clip: _Clip, channel: np.ndarray) -> np.ndarray:
    """The clip's embedding as heard through the episode's channel (its own when the two channels agree)."""
    heard = _through_channel(clip, channel)
    if heard is None:
        return clip.embedding
    emb = voice_embeddings(heard, {0: None}, min_speech=ENROLL_MIN_SPEECH, remember=False)[0]
    return clip.embedding if emb is None else emb


def _clip_print(clip: _Clip, channel: np.ndarray | None = None) -> np.ndarray:
    """The clip's CAM++ print, heard through the episode's channel first (as recorded without one)."""
    from . import campplus

    heard = _through_channel(clip, channel)
    return campplus.voice(clip.samples if heard is None else heard, None, min_speech=0.0)


def enrolled_prints(folder: Path, channel: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Name -> unit mean of the CAM++ prints of its clips, each heard through the episode's `channel` first."""
    clips, _ = _enrolled_clips(folder)
    return {name: _unit_mean([_clip_print(c, channel) for c in cs]) for name, cs in clips.items()}


def _unit_mean(embs) -> np.ndarray:
    mean = np.mean(embs, axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-9)


def clip_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A clip as recorded (a voice library's sample: no episode to match): its resemblyzer embedding and its
    CAM++ print, each made as `--speakers` makes them."""
    clip = _clip(path)
    return clip.embedding, _clip_print(clip)
