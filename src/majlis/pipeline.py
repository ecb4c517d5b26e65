"""The whole data path: decode -> ASR -> diarize -> name speakers -> align words -> Transcript.

Each stage is one function, and run_stages is the only place they are put in sequence: `transcribe_file`
(the straight path a newcomer reads top to bottom), the `majlis transcribe` command and every batch worker
call it, with a stage cache (stagecache.py) where a stage may be reused.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import align, attribution, audio
from .asr import AsrEngine, AsrResult, engine_class, get_asr, own_options, plan_asr
from .diarize import Diarization, Diarizer, get_diarizer
from .errors import UsageError
from .files import json_output, read_transcript
from .speakers import Naming, name_speakers
from .stagecache import Direct
from .types import ProgressHook, Transcript, WordsHook

log = logging.getLogger("majlis")
# How far the work beside the ASR gives way to it (Linux niceness, 0-19).
BESIDE_NICENESS = 10


@dataclass(frozen=True)
class Options:
    asr: str = "auto"  # auto or a name in asr.REGISTRY: whisper | faster-whisper | sphinx
    model: str | None = None  # whisper model name, checkpoint path or CTranslate2 folder
    model_dir: str | None = None
    language: str | None = None  # None: detect (whisper) / en (sphinx)
    task: str = "transcribe"  # transcribe | translate
    compute_type: str | None = None  # faster-whisper: int8 on CPU, float16 on CUDA when None
    beam_size: int | None = None  # faster-whisper: 5 when None
    threads: int | None = None  # faster-whisper: the cores this process may use when None
    vad: bool | None = None  # faster-whisper's Silero VAD filter; on when None
    prompt: str | None = None  # whisper's initial prompt
    hotwords: tuple[str, ...] = ()  # spellings to favour
    # Add the enrolled speakers' names to the hotwords. Off by default: on the demo panel it spelled the names
    # right but raised faster-whisper tiny.en's WER from 0.123 to 0.150 and ran 6x longer (repetition loops).
    speaker_hotwords: bool = False
    diarizer: str = "auto"  # auto | pyannote | builtin | none
    pipeline: str | None = None  # pyannote pipeline name or local folder
    hf_token: str | None = None
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    speakers_dir: Path | None = None  # enrollment clips: DIR/<Name>.<ext> or DIR/<Name>/*.<ext>
    names: Mapping[str, str] = field(default_factory=dict)  # SPEAKER_00=Tahir by hand
    # Voice similarity a speaker needs to take an enrolled name; None: calibrated per episode (speakers.decide).
    match_threshold: float | None = None
    device: str | None = None  # cpu | cuda; None picks
    voices: Any = None  # voices.Snapshot: the voice library speakers are named from when speakers_dir is None


@dataclass
class Engines:
    """Loaded once per process and reused for every file."""

    asr: AsrEngine
    diarizer: Diarizer | None
    side_by_side: bool = True  # run_stages runs ASR and diarization at the same time

    @classmethod
    def load(cls, options: Options, *, side_by_side: bool = True) -> "Engines":
        """`side_by_side`: ASR and diarization will run at the same time (transcribe_file does; batch
        workers run one stage after the other)."""
        asr_options = asr_choice(options)
        planned = plan_asr(options.asr, **asr_options)
        beside = side_by_side and options.diarizer != "none"
        if beside and engine_class(planned).holds_gil:
            # In a thread it would stall every line of Python the diarizer runs (see asr/child.py). Started
            # first, its own process loads the engine while this one loads the diarizer.
            from .asr.child import ChildProcessAsr

            asr = ChildProcessAsr(planned, **own_options(planned, asr_options))
        else:
            asr = get_asr(options.asr, planned=planned, **asr_options)
        try:
            diarizer = None
            if options.diarizer != "none":
                diarizer = get_diarizer(
                    options.diarizer, pipeline=options.pipeline, hf_token=options.hf_token, device=options.device
                )
                if options.speakers_dir is not None:
                    from . import campplus

                    campplus.load()  # the voice-print model, with the other engines, not in the first file
            if beside and asr.holds_gil and asr.respawn:  # whisper that fell back to sphinx
                from .asr.child import ChildProcessAsr

                asr = ChildProcessAsr(asr.respawn[0], **asr.respawn[1])
            asr.name  # noqa: B018 - wait until a child has loaded, and fail here if it cannot
        except BaseException:
            asr.close()
            raise
        return cls(asr, diarizer, side_by_side)

    def close(self) -> None:
        """Release what the engines hold outside this process (the ASR child process)."""
        for engine in (self.asr, self.diarizer):
            if engine is not None:
                engine.close()

    def describe(self) -> dict[str, str]:
        return {"asr": self.asr.name, "diarizer": self.diarizer.name if self.diarizer else "none"}


def asr_choice(options: Options) -> dict:
    """What the ASR engine is asked for: the options that shape its output, and (speaker_hotwords) the names of
    the enrolled speakers, so that "Mudaqiq" and "Tolibov" come out spelled as their clips are named."""
    names: tuple[str, ...] = ()
    if options.speakers_dir is not None and options.speaker_hotwords:
        from .speakers import enrollment_clips

        names = tuple(enrollment_clips(options.speakers_dir))
    return dict(speaker_names=names, model=options.model, model_dir=options.model_dir, language=options.language, task=options.task,
                device=options.device, compute_type=options.compute_type, beam_size=options.beam_size,
                threads=options.threads, vad=options.vad, prompt=options.prompt, hotwords=tuple(options.hotwords))


def decode_stage(path: str | Path, hook: ProgressHook | None = None) -> np.ndarray:
    samples = audio.decode(path)
    if hook:
        hook("decode", 1, 1)
    return samples


def asr_stage(engines: Engines, samples: np.ndarray, hook: ProgressHook | None = None,
              on_words: WordsHook | None = None) -> AsrResult:
    return engines.asr.transcribe(samples, hook=hook, on_words=on_words)


def diarize_stage(
    engines: Engines, samples: np.ndarray, options: Options, hook: ProgressHook | None = None
) -> Diarization:
    duration = len(samples) / audio.SAMPLE_RATE
    if engines.diarizer is None:
        return align.single_speaker(duration)
    return engines.diarizer.diarize(
        samples,
        num_speakers=options.num_speakers,
        min_speakers=options.min_speakers,
        max_speakers=options.max_speakers,
        hook=hook,
    )


def naming_stage(samples: np.ndarray, diarization: Diarization, options: Options) -> Naming:
    library = options.voices if options.speakers_dir is None else None
    if library is not None and not library.prints:
        log.warning("voice library %s: some voiceprints predate CAM++ prints, so names come from the older "
                    "resemblyzer decision; `majlis voices add NAME CLIP... --replace` renews a voiceprint",
                    library.path)
    naming = name_speakers(samples, diarization, enrollment_dir=options.speakers_dir, names=options.names,
                           threshold=options.match_threshold, voices=library.voices() if library else None)
    return Naming(naming.mapping, naming.scores, library.metadata()) if library else naming


@dataclass(frozen=True)
class Staged:
    """What the stages made of one recording, before it is a Transcript (assemble)."""

    path: str
    samples: np.ndarray
    asr: AsrResult
    diarization: Diarization
    naming: Naming
    engines: Mapping[str, str]  # the engines' names, for the transcript
    heard: attribution.Heard | None = None  # the word re-check's voices, when made beside the ASR


class _Stopped(Exception):
    """The work beside the ASR was told to stop (the ASR failed or was interrupted)."""


def _all_cores() -> int | None:
    """The cores this process may use (None where the system cannot say: the encoder's default)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def _give_way() -> None:
    """The calling thread gives way to the others (Linux sets niceness per thread; elsewhere nothing changes):
    the work beside the ASR takes the cycles the ASR leaves idle. Raising it again needs privilege, so only a
    thread that ends with its work calls this. Not SCHED_IDLE: a thread of that class that holds the GIL
    waits for an idle core to let it go, and the ASR's Python waits with it (overhead 1.31 on panel39)."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BESIDE_NICENESS)
    except (AttributeError, OSError):
        pass


def run_stages(path: str | Path, *, options: Options, engines: Engines, hook: ProgressHook | None = None,
               cache: Direct | None = None) -> Staged:
    """decode -> (asr || diarize) -> name speakers: the one sequence every way in runs (transcribe_file, the
    `majlis transcribe` command, each batch worker). `cache` decides each stage's value (stagecache.StageCache
    takes finished ones from <out>/.majlis/cache; batch's reports each stage as it goes); None computes all.
    ASR and diarization run side by side when the engines were loaded for that, else one after the other."""
    cache = cache or Direct()
    samples = cache.decode(path, lambda: decode_stage(path, hook))
    names = engines.describe()
    cache.open(path, names, options)

    def name(diarization: Diarization, report: ProgressHook | None = hook) -> Naming:
        if report:
            report("name", 0, 2)
        naming = cache.run("naming", lambda: naming_stage(samples, diarization, options))
        if report:
            report("name", 1, 2)
        return naming

    heard = None
    if engines.side_by_side:
        # ASR and diarization read the same samples and share nothing: run them side by side. The ASR takes
        # longest, so naming and the voices the word re-check needs are made beside it too, and then the
        # windows of the words the ASR hands over as it goes (None: the ASR is done). That work runs in a
        # thread of its own that gives way to the ASR and ends with the file.
        decoded: queue.SimpleQueue = queue.SimpleQueue()
        stop, asr_done = threading.Event(), threading.Event()

        def checked(stage: str, done: float, total: float) -> None:
            if stop.is_set():
                raise _Stopped
            if hook:
                hook(stage, done, total)

        def voices():
            diarization = cache.run("diarize", lambda: diarize_stage(engines, samples, options, checked))
            naming = name(diarization, checked)
            # When the ASR finished first (a long diarization), nothing is left to give way to: every core.
            heard = attribution.hear(samples, naming.apply(diarization).exclusive,
                                     threads=_all_cores() if asr_done.is_set() else None)
            while (words := decoded.get()) is not None and not stop.is_set():
                # Once the ASR is done, the re-check embeds what is left in one batch on every core (assemble).
                if heard is not None and not asr_done.is_set():
                    attribution.prehear(heard, words)
            return diarization, naming, heard

        made: dict = {}

        def beside():
            _give_way()
            try:
                made["voices"] = voices()
            except BaseException as error:  # noqa: BLE001 - handed to the calling thread
                made["error"] = error

        thread = threading.Thread(target=beside, name="majlis-voices")
        thread.start()
        try:
            asr_result = cache.run("asr", lambda: asr_stage(engines, samples, hook, decoded.put))
        except BaseException:
            stop.set()  # Ctrl-C or a failed ASR: the voices stop at their next progress mark
            raise
        finally:
            asr_done.set()
            decoded.put(None)
            while thread.is_alive():
                thread.join(0.5)  # a timed wait: a second Ctrl-C is never held up here
        if "error" in made:
            raise made["error"]
        diarization, naming, heard = made["voices"]
    else:
        asr_result = cache.run("asr", lambda: asr_stage(engines, samples, hook))
        diarization = cache.run("diarize", lambda: diarize_stage(engines, samples, options, hook))
        naming = name(diarization)
    return Staged(str(path), samples, asr_result, diarization, naming, names, heard)


def assemble(staged: Staged, *, episode: str, metadata: Mapping[str, str] | None = None) -> Transcript:
    """The Transcript: words aligned to the named speakers, each word's speaker re-checked by its voice."""
    samples, naming = staged.samples, staged.naming
    duration = len(samples) / audio.SAMPLE_RATE
    named = naming.apply(staged.diarization)
    # Voices heard beside the ASR mean this process's ASR is over: the words left to hear may take every core.
    threads = _all_cores() if staged.heard is not None else None
    segments = align.align_words(
        staged.asr.segments, named.exclusive, duration=duration, turns=named.turns,
        recheck=lambda words: attribution.recheck(samples, words, named.exclusive, staged.heard, threads=threads,
                                                  alone=named.alone))
    from .voice import forget

    forget(samples)  # the recording's last use
    speakers = tuple(sorted({s.speaker for s in segments} | {t.speaker for t in named.turns}))
    return Transcript(
        episode=episode,
        audio=staged.path,
        duration=duration,
        language=staged.asr.language,
        engines=dict(staged.engines),
        speakers=speakers,
        segments=segments,
        turns=named.turns,
        speaker_scores=naming.scores,
        metadata={**dict(metadata or {}), **dict(naming.metadata)},
        damage=audio.damage_of(samples),
    )


def transcribe_file(
    path: str | Path,
    *,
    episode: str | None = None,
    options: Options = Options(),
    engines: Engines | None = None,
    hook: ProgressHook | None = None,
    metadata: Mapping[str, str] | None = None,
    cache: Direct | None = None,
) -> Transcript:
    """Turn one recording into a speaker-attributed, word-timed transcript (run_stages, then assemble)."""
    engines = engines or Engines.load(options)
    staged = run_stages(path, options=options, engines=engines, hook=hook, cache=cache)
    transcript = assemble(staged, episode=episode or Path(path).stem, metadata=metadata)
    if hook:
        hook("name", 2, 2)
    return transcript


def index_stage(index, episode: str, outputs: Sequence[str | Path], transcript: Transcript | None = None) -> None:
    """Add (or replace) the episode in `index`, from its JSON transcript among `outputs` (read from disk when
    `transcript` is not given: a batch run's exports may be from an earlier run)."""
    path = json_output(episode, outputs)
    if transcript is None:
        if path is None:
            raise UsageError(f"{episode}: no JSON transcript among the outputs to index")
        transcript = read_transcript(path)
    # Index.add replaces the episode's documents in one commit: re-adding after a crash never duplicates.
    index.add([transcript], transcript_paths={transcript.episode: Path(path)} if path is not None else None)
