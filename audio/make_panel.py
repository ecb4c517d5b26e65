#!/usr/bin/env python3
"""Synthesise the demo panel: a stand-in for the 39-minute RFE/RL "majlis" on the Islamic Movement of Uzbekistan.

    python audio/make_panel.py                                  # the committed demo, byte for byte
    python audio/make_panel.py --minutes 39 --out audio/panel39 # a long panel for benchmarks (git-ignored)

Every turn of audio/panel_script.json is spoken by its speaker's flite voice, reshaped by sox so the four
voices sit far apart for a speaker encoder, trimmed to its voiced part, and laid on one timeline with short
pauses and a few overlaps. The truth file records the sample-exact bounds of each turn's voiced part and the
exact text that was spoken. Enrollment clips read sentences that never occur in the panel. The same arguments
always give byte-identical files: pauses come from a seeded random.Random, noise from a seeded PCG64, sox runs
in repeatable mode and ffmpeg writes bit-exact MP3s without metadata.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
try:
    from majlis.files import atomic_write_bytes, atomic_write_text
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(HERE.parent / "src"))
    from majlis.files import atomic_write_bytes, atomic_write_text

SR = 16000  # what flite's 16 kHz voices speak and what majlis decodes to: no resampling anywhere
BITRATE = "48k"
PAUSE = (0.3, 0.9)  # silence between turns, seconds
OVERLAP = (0.3, 0.8)  # how early an interrupting speaker starts
SENTENCE_GAP = (0.18, 0.32)  # breath between sentences of one turn
LEAD, TAIL = 0.5, 0.7
NOISE = 0.0008  # room-tone floor (about -68 dBFS RMS); pure digital silence is unlike any recording
TARGET_RMS, PEAK = 0.07, 0.45  # two overlapped peaks still stay below full scale
ENROLL_SECONDS = (8.0, 15.0)
EXTRA_OVERLAP_P = 0.06  # share of turn changes that overlap in long panels (the demo marks its own)


class PanelError(Exception):
    pass


@dataclass(frozen=True)
class Line:
    speaker: str
    sentences: tuple[str, ...]
    overlap: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, **kw)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PanelError(f"{cmd[0]} failed: {err[-1] if err else 'exit ' + str(proc.returncode)}")
    return proc


class Voices:
    """Speaks sentences in each speaker's voice; a sentence is synthesised once however often it recurs."""

    def __init__(self, voices: dict, workdir: Path):
        self.voices, self.workdir, self.cache = voices, workdir, {}

    def say(self, speaker: str, sentence: str) -> np.ndarray:
        key = (speaker, sentence)
        if key not in self.cache:
            self.cache[key] = self._synth(self.voices[speaker], sentence)
        return self.cache[key]

    def _synth(self, v: dict, sentence: str) -> np.ndarray:
        raw = self.workdir / "say.wav"
        _run(["flite", "-voice", v["voice"], "-t", sentence, "-o", str(raw)])
        # Headroom first so EQ boosts cannot clip; float output means sox never dithers, so nothing random enters.
        effects = ["gain", "-8", *map(str, v.get("effects", ()))]
        out = _run(["sox", "-R", "-V1", str(raw), "-t", "f32", "-c", "1", "-r", str(SR), "-", *effects]).stdout
        x = _trim(np.frombuffer(out, dtype=np.float32).astype(np.float64))
        if len(x) == 0:
            raise PanelError(f"flite said nothing for {sentence!r}")
        return _level(x)


def _trim(x: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Keep the voiced part: from the first to the last 10 ms frame within `floor_db` of the loudest frame."""
    hop = SR // 100
    n = len(x) // hop
    if n == 0:
        return x[:0]
    rms = np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1))
    loud = np.nonzero(rms > rms.max() * 10 ** (floor_db / 20))[0]
    y = x[loud[0] * hop : (loud[-1] + 1) * hop].copy()
    fade = min(48, len(y) // 2)  # 3 ms, so cutting flite's room tone leaves no click
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, fade))
    y[:fade] *= ramp
    y[len(y) - fade :] *= ramp[::-1]
    return y


def _level(x: np.ndarray) -> np.ndarray:
    gain = TARGET_RMS / max(float(np.sqrt((x**2).mean())), 1e-9)
    gain = min(gain, PEAK / max(float(np.abs(x).max()), 1e-9))
    return x * gain


def _secs(rng: random.Random, bounds: tuple[float, float]) -> int:
    return round(rng.uniform(*bounds) * SR)


def speak_turn(voices: Voices, line: Line, rng: random.Random) -> np.ndarray:
    parts = []
    for i, sentence in enumerate(line.sentences):
        if i:
            parts.append(np.zeros(_secs(rng, SENTENCE_GAP)))
        parts.append(voices.say(line.speaker, sentence))
    return np.concatenate(parts)


def demo_lines(script: dict) -> list[Line]:
    return [Line(t["speaker"], tuple(t["text"]), bool(t.get("overlap"))) for t in script["demo"]]


def _cycle(items: list, rng: random.Random):
    """Endless reshuffled passes over `items`, so no sentence returns before all the others have been used."""
    while True:
        batch = list(items)
        rng.shuffle(batch)
        yield from batch


def extension_lines(script: dict, seed: int):
    """An endless continuation of the conversation: questions from the moderator, answers recombined from each
    panelist's stand-alone sentences (demo sentences that need their context are not reused)."""
    rng = random.Random(seed * 7919 + 1)
    ext, mod = script["extension"], script["moderator"]
    panelists = [s for s in script["voices"] if s != mod]
    pools = {s: _cycle(ext["answers"][s], rng) for s in panelists}
    asides = _cycle(ext["answers"][mod], rng)
    questions = _cycle(ext["questions"], rng)
    while True:
        q = [next(asides)] if rng.random() < 0.3 else []
        yield Line(mod, tuple(q + [next(questions)]), rng.random() < EXTRA_OVERLAP_P)
        for i, s in enumerate(rng.sample(panelists, rng.choice((1, 2, 2, 3)))):
            lead = [rng.choice(ext["reactions"][s])] if i and rng.random() < 0.35 else []
            said = [next(pools[s]) for _ in range(rng.choice((1, 2, 2, 3)))]
            yield Line(s, tuple(lead + said), rng.random() < EXTRA_OVERLAP_P)


def build_panel(script: dict, voices: Voices, seed: int, minutes: float | None):
    """Lay the turns on one timeline. Returns (samples, turns) with turns as truth dicts."""
    rng = random.Random(seed)
    demo = demo_lines(script)
    body, closing = demo[:-1], demo[-1]
    if minutes is None:
        source = iter(body)
    else:
        source = itertools.chain(body, extension_lines(script, seed))
    target = None if minutes is None else minutes * 60.0
    closing_audio = speak_turn(voices, closing, random.Random(seed + 1))
    placed: list[tuple[int, np.ndarray, Line, int]] = []  # (start, audio, line, cursor before it)
    cursor = round(LEAD * SR)  # where the next turn may start
    prev_start = prev_end = 0
    for line in source:
        audio = speak_turn(voices, line, rng)
        if target is not None and (cursor + len(audio) + len(closing_audio)) / SR + PAUSE[1] + TAIL > target:
            break
        start = cursor
        if line.overlap and placed:
            early = _secs(rng, OVERLAP) + (cursor - prev_end)
            # Never reach back past the middle of the turn being interrupted.
            start = max(cursor - early, prev_start + (prev_end - prev_start) // 2)
        placed.append((start, audio, line, cursor))
        prev_start, prev_end = start, start + len(audio)
        cursor = prev_end + _secs(rng, PAUSE)
    # A long panel can stop right after a question; the moderator must not answer himself with the goodbye.
    while placed and placed[-1][2].speaker == closing.speaker:
        cursor = placed.pop()[3]
    placed.append((cursor, closing_audio, closing, cursor))
    total = cursor + len(closing_audio) + round(TAIL * SR)
    noise_rng = np.random.Generator(np.random.PCG64(seed))
    mix = (noise_rng.random(total) - noise_rng.random(total)) * NOISE
    turns = []
    for start, audio, line, _ in placed:
        mix[start : start + len(audio)] += audio
        turns.append({"speaker": line.speaker, "start": round(start / SR, 3),
                      "end": round((start + len(audio)) / SR, 3), "text": line.text})
    turns.sort(key=lambda t: (t["start"], t["end"]))
    return mix, turns


def encode_mp3(samples: np.ndarray, workdir: Path) -> bytes:
    # A real file, not a pipe: ffmpeg seeks back to write the LAME header that makes decoding gapless.
    out = workdir / "enc.mp3"
    _run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(SR), "-ac", "1",
         "-i", "-", "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
         "-c:a", "libmp3lame", "-b:a", BITRATE, "-ac", "1", "-ar", str(SR), str(out)],
        input=np.clip(samples, -1.0, 1.0).astype("<f4").tobytes(),
    )
    return out.read_bytes()


def enrollment_clip(script: dict, voices: Voices, speaker: str, seed: int) -> np.ndarray:
    rng = random.Random(f"{seed}:{speaker}")
    speech = speak_turn(voices, Line(speaker, tuple(script["enrollment"][speaker])), rng)
    seconds = len(speech) / SR
    if not ENROLL_SECONDS[0] <= seconds <= ENROLL_SECONDS[1]:
        raise PanelError(f"enrollment text for {speaker} speaks {seconds:.1f} s, want {ENROLL_SECONDS} s")
    pad = np.zeros(round(0.3 * SR))
    clip = np.concatenate([pad, speech, pad])
    noise_rng = np.random.Generator(np.random.PCG64([seed, *speaker.encode()]))
    return clip + (noise_rng.random(len(clip)) - noise_rng.random(len(clip))) * NOISE


def check_script(script: dict) -> None:
    names = list(script["voices"])
    panel = {s for t in script["demo"] for s in t["text"]}
    panel |= {s for pool in script["extension"]["answers"].values() for s in pool}
    panel |= set(script["extension"]["questions"]) | {s for r in script["extension"]["reactions"].values() for s in r}
    for name in names:
        reused = panel & set(script["enrollment"].get(name, ()))
        if reused:
            raise PanelError(f"enrollment sentence for {name} also occurs in the panel: {sorted(reused)[0]!r}")
    unknown = {t["speaker"] for t in script["demo"]} - set(names)
    if unknown:
        raise PanelError(f"turns by speakers without a voice: {sorted(unknown)}")


def make(script: dict, out: Path, speakers_dir: Path, seed: int, minutes: float | None) -> dict:
    check_script(script)
    with tempfile.TemporaryDirectory(prefix="make_panel.") as tmp:
        work = Path(tmp)
        voices = Voices(script["voices"], work)
        clips = {name: encode_mp3(enrollment_clip(script, voices, name, seed), work) for name in script["voices"]}
        mix, turns = build_panel(script, voices, seed, minutes)
        mp3 = encode_mp3(mix, work)
    truth = {"episode": out.name, "audio": out.name + ".mp3", "duration": round(len(mix) / SR, 3),
             "speakers": list(script["voices"]), "turns": turns}
    for name, data in clips.items():
        atomic_write_bytes(speakers_dir / f"{name}.mp3", data)
    atomic_write_bytes(out.with_name(out.name + ".mp3"), mp3)
    atomic_write_text(out.with_name(out.name + ".truth.json"), json.dumps(truth, ensure_ascii=False, indent=1) + "\n")
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, help="length of a longer panel (default: exactly the demo script)")
    ap.add_argument("--out", type=Path, default=HERE / "panel", help="writes OUT.mp3 and OUT.truth.json")
    ap.add_argument("--speakers-dir", type=Path, default=HERE / "speakers", help="enrollment clips <Name>.mp3")
    ap.add_argument("--seed", type=int, default=2015)
    ap.add_argument("--script", type=Path, default=HERE / "panel_script.json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.minutes is not None and not 0.5 <= args.minutes <= 600:
        ap.error("--minutes must be between 0.5 and 600")
    missing = [tool for tool in ("flite", "sox", "ffmpeg") if shutil.which(tool) is None]
    if missing:
        print(f"make_panel: error: needs {', '.join(missing)} on PATH", file=sys.stderr)
        return 2
    try:
        script = json.loads(args.script.read_text(encoding="utf-8"))
        truth = make(script, args.out, args.speakers_dir, args.seed, args.minutes)
    except (OSError, json.JSONDecodeError, KeyError, PanelError) as e:
        print(f"make_panel: error: {e}", file=sys.stderr)
        return 1
    overlaps = sum(b["start"] < a["end"] for a, b in zip(truth["turns"], truth["turns"][1:]))
    print(f"{args.out}.mp3: {truth['duration']:.1f} s, {len(truth['turns'])} turns, {overlaps} overlaps",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
