"""Samples for the voice library (voices.py): from clips (`majlis voices add`), and from a speaker of an episode
already transcribed (`majlis voices from`, `majlis rename --learn`), embedded from that speaker's own words as
naming embeds a diarized speaker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from .errors import AudioError, TranscriptError, UsageError, VoiceError
from .voices import MIN_SECONDS, VoiceLibrary, check_name, default_dir

WORD_GAP = 1.0  # a speaker's words closer than this are one span of their speech


def check_clips(clips: Sequence[str | os.PathLike]) -> list:
    """Every clip probed (a readable recording with audio), so a missing or unreadable one fails before any
    is embedded; their probes."""
    from . import audio

    if not clips:
        raise UsageError("give at least one voice clip")
    probes = []
    for c in clips:
        if not Path(c).exists():
            raise AudioError(f"{c}: no such voice clip")
        probes.append(audio.probe(c))
    return probes


def clip_samples(clips: Sequence[str | os.PathLike], probes: Sequence | None = None) -> list[dict]:
    """One sample per clip, embedded as `--speakers` embeds its clips (speakers.clip_sample)."""
    from .speakers import clip_sample

    paths = [Path(c) for c in clips]
    probes = probes if probes is not None else check_clips(paths)
    out = []
    for p, probe in zip(paths, probes):
        embedding, voice_print = clip_sample(p)
        out.append({"source": str(p.resolve()), "seconds": round(float(probe.duration or 0.0), 2),
                    "embedding": [float(x) for x in embedding], "print": [float(x) for x in voice_print]})
    return out


@dataclass(frozen=True)
class EpisodeVoice:
    """Where one speaker of a transcribed episode speaks: checked before anything is decoded."""

    transcript: Path
    episode: str
    speaker: str
    audio: Path
    spans: tuple[tuple[float, float], ...]

    @property
    def seconds(self) -> float:
        return sum(b - a for a, b in self.spans)


def find_transcript(episode: str | os.PathLike, index_dir: str | os.PathLike | None = None) -> Path:
    """EPISODE as a transcript .json path, else as an episode id in the index."""
    p = Path(episode)
    if p.is_file() or p.suffix == ".json" or os.sep in str(episode):
        if not p.is_file():
            raise TranscriptError(f"{p}: no such transcript")
        return p
    index = Path(index_dir) if index_dir is not None else Path("index")
    try:
        from .search import Index

        record = Index(index).episode(str(episode))
    except Exception as e:  # no index there, or an unreadable one: the episode cannot be found
        raise VoiceError(f"episode {str(episode)!r}: not a transcript file, and the index {index} cannot "
                         f"tell ({e})") from None
    if record is None:
        raise VoiceError(f"episode {str(episode)!r}: not a transcript file, nor an episode in the index {index} "
                         "(majlis episodes lists them)")
    if not record.get("transcript"):
        raise VoiceError(f"episode {str(episode)!r}: the index does not say where its transcript is; "
                         "give the transcript's .json path")
    return Path(record["transcript"])


def speaker_spans(transcript, speaker: str) -> tuple[tuple[float, float], ...]:
    """Where `speaker` alone is heard: runs of their words (other speakers' overlapping words left out),
    joined across pauses under WORD_GAP. Without words, their turns less everyone else's."""
    spans: list[list[float]] = []
    run: list[float] | None = None
    # A word without a speaker of its own (older transcripts) is its segment's.
    said = sorted(((w, w.speaker or seg.speaker) for seg in transcript.segments for w in seg.words),
                  key=lambda ws: (ws[0].start, ws[0].end))
    for w, who in said:
        if who != speaker or w.overlap or w.end <= w.start:
            run = None  # another voice (or two at once) between: the next word starts a new run
            continue
        if run is not None and w.start - run[1] <= WORD_GAP:
            run[1] = max(run[1], w.end)
        else:
            run = [w.start, w.end]
            spans.append(run)
    runs = tuple((round(a, 3), round(b, 3)) for a, b in spans if b - a > 0)
    if runs:
        return runs
    others = [(t.start, t.end) for t in transcript.turns if t.speaker != speaker]
    out = []
    for t in transcript.turns:
        if t.speaker != speaker:
            continue
        pieces = [(t.start, t.end)]
        for a, b in others:
            pieces = [q for x, y in pieces for q in ((x, min(y, a)), (max(x, b), y)) if q[1] - q[0] > 0.05]
        out += pieces
    return tuple(sorted(out))


def episode_voice(episode: str | os.PathLike, speaker: str, *, index_dir=None, transcript=None,
                  transcript_path: Path | None = None) -> EpisodeVoice:
    """Check that `speaker` speaks in EPISODE and that its recording is here (nothing decoded yet).
    `transcript`: the episode as it will be once renamed (rename --learn), else read from its file."""
    from .files import find_recording, read_transcript

    path = transcript_path or find_transcript(episode, index_dir)
    t = transcript if transcript is not None else read_transcript(path)
    present = list(dict.fromkeys([*t.speakers, *(s.speaker for s in t.segments), *(x.speaker for x in t.turns)]))
    if speaker not in present:
        raise VoiceError(f"no speaker {speaker!r} in episode {t.episode!r}; its speakers are "
                         f"{', '.join(present) or 'none'}")
    audio = find_recording(t.audio, path)
    if audio is None:
        raise VoiceError(f"episode {t.episode!r}: its recording {t.audio} is not here (as written, nor beside "
                         f"{path})")
    spans = speaker_spans(t, speaker)
    if sum(b - a for a, b in spans) < MIN_SECONDS:
        raise VoiceError(f"{speaker} speaks too little in episode {t.episode!r} to take a voice from "
                         f"({sum(b - a for a, b in spans):.1f} s, need {MIN_SECONDS:.0f} s)")
    return EpisodeVoice(Path(path), t.episode, speaker, audio, spans)


def embed_episode_voices(found: Sequence[EpisodeVoice]) -> list[dict]:
    """One sample per EpisodeVoice, embedded as naming embeds a diarized speaker (speakers.speech_prints, and
    _cluster_voices' windows, step and cap), so a voice learned from an episode is what naming will hear next time.
    Each recording is decoded once."""
    from .audio import decode
    from .speakers import MAX_WINDOWS, NAMING_STEP, speech_prints, voice_embeddings

    out: list[dict | None] = [None] * len(found)
    by_audio: dict[Path, list[int]] = {}
    for i, v in enumerate(found):
        by_audio.setdefault(v.audio, []).append(i)
    for audio, which in by_audio.items():
        samples = decode(audio)
        groups = {i: list(found[i].spans) for i in which}
        # The analysis is kept for speech_prints, which lets it go.
        embs = voice_embeddings(samples, groups, step=NAMING_STEP, max_windows=MAX_WINDOWS, min_speech=MIN_SECONDS)
        prints = speech_prints(samples, groups, min_speech=MIN_SECONDS)
        for i in which:
            v = found[i]
            if embs[i] is None or prints[i] is None:
                raise VoiceError(f"{v.speaker} in episode {v.episode!r}: too little clear speech to take a voice "
                                 f"from ({v.seconds:.1f} s of words, need {MIN_SECONDS:.0f} s of speech)")
            out[i] = {"source": f"{v.episode}:{v.speaker}", "seconds": round(v.seconds, 2),
                      "embedding": [float(x) for x in embs[i]], "print": [float(x) for x in prints[i]]}
    return [s for s in out if s is not None]


def learn_from_rename(transcript: str | os.PathLike, mapping: Mapping[str, str], *, voices_dir=None, index_dir=None):
    """What `majlis rename --learn` adds to the library, worked out before the rename writes anything: the
    library (checked writable), each new name's EpisodeVoice in the renamed transcript, and its sample.
    The caller renames, then adds each sample (VoiceLibrary.add)."""
    from .files import read_transcript
    from .export.rename import apply_mapping, journal_path

    lib = VoiceLibrary(voices_dir if voices_dir is not None else default_dir(index_dir))
    names = [check_name(n) for n in dict.fromkeys(mapping.values())]
    lib.manifest()
    path = Path(transcript)
    current = read_transcript(path)
    try:
        renamed = apply_mapping(current, mapping)
    except UsageError:
        if not journal_path(path).exists():
            raise
        renamed = current  # an interrupted rename of these names: the transcript already has them
    found = [episode_voice(path, n, transcript=renamed, transcript_path=path) for n in names]
    lib.check_writable()
    return lib, found, embed_episode_voices(found)


def learn_from_episode(library: VoiceLibrary, episode: str | os.PathLike, speaker: str, *, name: str | None = None,
                       replace: bool = False, index_dir=None,
                       transcript_path: Path | None = None) -> tuple[int, EpisodeVoice]:
    """Take `speaker`'s voice from an episode already transcribed into `library` as `name` (default: the
    speaker's own), for `majlis voices from` and the editor's "Learn voice": the name, the library, the
    speaker and the recording are all checked before the recording is decoded. Returns the library's new
    version and the voice."""
    name = check_name(speaker if name is None else name)
    library.manifest()
    voice = episode_voice(episode, speaker, index_dir=index_dir, transcript_path=transcript_path)
    library.check_writable()
    return library.add(name, embed_episode_voices([voice]), replace=replace), voice
