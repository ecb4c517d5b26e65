"""Put people's names on diarizer labels: by hand (--names) and from short voice samples (--speakers DIR).

Enrollment is local: DIR/<Name>.<ext> or DIR/<Name>/*.<ext>, any audio ffmpeg reads. The clips are first
brought to the episode's channel (channel.py: where the episode carries nothing, a phone line's 300-3,400 Hz
band say, the clip is attenuated to match), then embedded. Each diarized speaker
is embedded from its own (overlap-free) speech with the resemblyzer encoder, compared by cosine similarity
with every enrolled voice, and the pairs are chosen by an optimal one-to-one assignment. A speaker whose
assigned voice is not similar enough becomes "Unknown 1", "Unknown 2", ... in order of first appearance.
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
from .errors import AudioError, UsageError
from .types import Turn

log = logging.getLogger("majlis")

# Cosine similarity (resemblyzer voice embeddings) at or above which a diarized speaker takes an enrolled
# name. Measured: flite voices against their own enrollment (other sentences) 0.97-0.99 (demo panel, 12
# sox-shifted flite voices, an unseen flite conversation); different flite voices <= 0.80 on the demo,
# <= 0.86 across the shifted set and 0.88 for one voice against itself three semitones higher. Real speech
# (pyannote's sample.wav, one session): a speaker's two halves 0.95, the two speakers 0.82-0.86. 0.90 sits
# between; enrollment recorded on another microphone scores lower, so callers may pass a lower threshold.
MATCH_THRESHOLD = 0.90
# The calibrated decision (see `decide`), from real voices (bench/panels.py, LibriSpeech readers): centred
# cosines of a voice and its own sample 0.63-0.94 on the same channel and 0.31-0.49 when the episode is a
# 32 kbps phone line, of different people <= 0.09 (<= 0.03 across channels); raw cosines across channels
# 0.66-0.78 for the same person.
CENTRED_MIN = 0.2
CENTRED_MARGIN = 0.15
RAW_FLOOR = 0.6
# Raw cosine by which a voice must beat the episode's other voices for a name. A voice nobody enrolled
# paired with an absent one came within 0.00-0.04 of the runner-up; true pairs 0.08-0.17, one 0.037.
COLUMN_GAP = 0.05
# Raw cosine between two diarized voices at or above which they may be halves of one (split_voices, decide):
# a reader split in two on a phone line 0.90-0.92 between the halves; different readers of one panel <= 0.84
# clean, but up to 0.90 on the phone line, where the name's own scores must then tell them apart.
SPLIT_MIN = 0.87
# In naming's cache key with any voices to name from (voices.naming_fingerprint): bump when a change in this
# module can name an episode's speakers differently.
NAMING_VERSION = "naming/3"  # a split voice does not compete with itself; a name must be its voice's best raw
CLOSE_NAMES = 0.03  # two enrolled names this close for one voice: warn
CLOSE_THRESHOLD = 0.02  # a match this close to the threshold: warn
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
    """Display names for a diarization's labels: `names` first, then voices from `enrollment_dir` (or, without
    it, the voiceprints `voices`: name -> unit embedding, from the voice library).
    `threshold` None: the calibrated decision (see `decide`); a number: a plain cosine bar, nothing else."""
    labels = _first_appearance(diarization)
    stray = sorted(set(names) - set(labels))
    if stray:
        log.warning("--names: no speaker %s in this recording (it has %s)", ", ".join(stray),
                    ", ".join(labels) or "none")
    mapping = {lab: names.get(lab, lab) for lab in labels}
    if enrollment_dir is not None:
        # The clips are at hand: heard through this episode's channel first. (The voice library keeps
        # embeddings, not audio, so its voiceprints are compared as recorded.)
        spans = [(t.start, t.end) for t in diarization.exclusive] or None
        voices = enrollment(Path(enrollment_dir), channel=speech_spectrum(samples, spans))
    if not voices:
        return Naming(mapping, {})
    taken = {names[lab] for lab in labels if lab in names}
    candidates = [n for n in voices if n not in taken]
    open_labels = [lab for lab in labels if lab not in names]
    scores: dict[str, float] = {}
    matched: dict[str, str] = {}
    if candidates and open_labels:
        embedded = _cluster_voices(samples, diarization, open_labels)
        rows = [lab for lab in open_labels if embedded[lab] is not None]
        if rows:
            heard = np.stack([embedded[lab] for lab in rows])
            enrolled = np.stack([voices[n] for n in voices])
            cols = [list(voices).index(n) for n in candidates]
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


def _centred(X: np.ndarray) -> np.ndarray | None:
    if len(X) < 2:
        return None
    Z = X - X.mean(axis=0)
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-9)


def decide(heard: np.ndarray, enrolled: np.ndarray, cols: list[int], threshold: float | None, *,
           rows: list[str] | None = None, names: list[str] | None = None) -> list[tuple[int, int]]:
    """(row of `heard`, row of `enrolled`) pairs: which diarized voice takes which enrolled name. Voices and
    names are paired one-to-one (optimal assignment); `cols` are the names still free.

    With a `threshold`, a pair needs that raw cosine. Without, the decision calibrates itself to the two
    recordings: raw cosines across channels (a studio sample, a 32 kbps phone episode) sink for everyone,
    true pairs included, so each side is centred on its own voices' mean first (what the episode's voices
    share is the channel, not the person). A pair is then taken when its raw cosine reaches
    MATCH_THRESHOLD, or when its centred cosine is at least CENTRED_MIN and beats every other candidate in
    its row and column by CENTRED_MARGIN, its raw cosine is at least RAW_FLOOR and the best of its row, and
    no other voice of the episode comes within COLUMN_GAP of it for that name. A voice the diarizer split
    in two (the halves' raw cosine SPLIT_MIN or more) does not compete with itself in the column."""
    from scipy.optimize import linear_sum_assignment

    raw = heard @ enrolled[cols].T
    a, b = _centred(heard), _centred(enrolled)
    centred = None if threshold is not None or a is None or b is None else a @ b[cols].T
    pick = linear_sum_assignment(-(raw if centred is None else centred))
    out = []
    bar = MATCH_THRESHOLD if threshold is None else threshold
    alike = heard @ heard.T >= SPLIT_MIN
    for i, j in zip(*pick):
        by_raw, by_centred = raw[i, j] >= bar, False
        if centred is not None:
            rivals = [r for r in range(len(heard)) if r != i and not alike[i, r]]
            others = np.concatenate([np.delete(centred[i], j), centred[rivals, j]])
            margin = centred[i, j] - (others.max() if len(others) else -1.0)
            # Centring pairs a voice nobody enrolled with a name nobody in the episode has (both differ from
            # the rest in the same way); the raw cosine must still single this voice out for the name and
            # this name out for the voice.
            gap = raw[i, j] - (raw[rivals, j].max() if rivals else 0.0)
            by_centred = bool(centred[i, j] >= CENTRED_MIN and margin >= CENTRED_MARGIN and raw[i, j] >= RAW_FLOOR
                              and gap >= COLUMN_GAP and raw[i, j] >= raw[i].max())
        if by_raw or by_centred:
            out.append((int(i), int(cols[j])))
        # Warn on the scores the decision rested on: a match the centred test also makes is not on a knife edge.
        _warn_if_close(raw if centred is None else centred, raw, i, j, bar, by_raw or by_centred,
                       not by_centred, rows, names, cols)
    return out


def split_voices(heard: np.ndarray, enrolled: np.ndarray, cols: list[int], pairs: list[tuple[int, int]]
                 ) -> list[tuple[int, int]]:
    """More (row, name) pairs for voices `decide` left unnamed: one the diarizer split off a named voice
    takes that name too. A left-over voice qualifies when, centred as `decide` centres, its best name is one
    already taken, by at least CENTRED_MIN and CENTRED_MARGIN over its other names, with a raw cosine of
    RAW_FLOOR or more, and it sounds like the voice holding that name (raw cosine SPLIT_MIN or more) more
    than like any other voice of the episode."""
    a, b = _centred(heard), _centred(enrolled)
    if a is None or b is None:
        return []
    holder = {j: i for i, j in pairs}
    centred, raw, voices = a @ b[cols].T, heard @ enrolled[cols].T, heard @ heard.T
    out = []
    for i in range(len(heard)):
        if i in {r for r, _ in pairs}:
            continue
        k = int(np.argmax(centred[i]))
        j = cols[k]
        if j not in holder:
            continue
        others = np.delete(centred[i], k)
        alike = np.delete(voices[i], i)
        if (centred[i, k] >= CENTRED_MIN and centred[i, k] - (others.max() if len(others) else -1.0) >= CENTRED_MARGIN
                and raw[i, k] >= RAW_FLOOR and voices[i, holder[j]] >= SPLIT_MIN
                and voices[i, holder[j]] >= alike.max()):
            log.info("speakers: voice %d is %s's too (a split of one voice: %.3f alike)", i, j, voices[i, holder[j]])
            out.append((i, j))
    return out


def _warn_if_close(score, raw, i, j, bar, ok, on_bar, rows, names, cols) -> None:
    """One line when a voice scores two names within CLOSE_NAMES of each other, or when a decision that
    rests on the raw bar (`on_bar`) sits within CLOSE_THRESHOLD of it."""
    who = rows[i] if rows else f"voice {i}"
    name = names[cols[j]] if names else f"name {cols[j]}"
    order = np.argsort(-score[i])
    if len(order) > 1 and score[i, order[0]] - score[i, order[1]] < CLOSE_NAMES:
        first, second = (names[cols[k]] if names else str(k) for k in order[:2])
        log.warning("speakers: %s sounds as much like %s (%.3f) as %s (%.3f); check who it is", who, first,
                    raw[i, order[0]], second, raw[i, order[1]])
    if on_bar and abs(raw[i, j] - bar) < CLOSE_THRESHOLD:
        log.warning("speakers: %s %s %s at %.3f, within %.2f of the %.2f threshold; check who it is", who,
                    "named" if ok else "not named", name, raw[i, j], CLOSE_THRESHOLD, bar)


def _cluster_voices(samples: np.ndarray, diarization: Diarization, labels: list[str]) -> dict:
    groups = {lab: [(t.start, t.end) for t in diarization.exclusive if t.speaker == lab] for lab in labels}
    # Naming is the recording's last use: what diarization kept of it is let go.
    return voice_embeddings(samples, groups, step=NAMING_STEP, max_windows=MAX_WINDOWS, remember=False)


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


def _matched_embedding(clip: _Clip, channel: np.ndarray) -> np.ndarray:
    """The clip's embedding as heard through the episode's channel (its own when the two channels agree)."""
    if clip.spectrum is None:
        return clip.embedding
    gain = channel_gain(channel, clip.spectrum)
    if not (gain < 0).any():
        return clip.embedding
    emb = voice_embeddings(apply_gain(clip.samples, gain), {0: None}, min_speech=ENROLL_MIN_SPEECH,
                           remember=False)[0]
    return clip.embedding if emb is None else emb


def _unit_mean(embs) -> np.ndarray:
    mean = np.mean(embs, axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-9)


def _enroll(paths: list[Path]) -> np.ndarray:
    """One unit voice embedding from clips as recorded (the voice library's samples: no episode to match)."""
    return _unit_mean([_clip(p).embedding for p in paths])
