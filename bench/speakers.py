"""Who said it, measured on real speech: the builtin diarizer and voice naming on pyannote's sample.wav (a
real phone call with reference turns and words) and on panels of real LibriSpeech voices (bench/panels.py),
clean and as a 32 kbps telephone-band episode named from studio samples.

    python bench/speakers.py [--quick] [--out-dir bench/results]
    python bench/speakers.py --unseen      # panels of seeds 10-17: no rule was chosen on them
    python bench/speakers.py --naming      # naming alone, CAM++ against resemblyzer, panels of seeds 0-17

Writes speakers.json: per case DER (0.25 s collar and none), words on the right speaker (one-to-one label
mapping, and by name where voices were enrolled), speakers found, overlap coverage and the diarizer's
real-time factor. Bars (issue 17): sample.wav DER <= 0.06 and >= 95% words; panels >= 98% words (>= 95%
across channels) with every enrolled speaker named; RTF <= 0.05 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent / "src"))  # after PYTHONPATH: the bench can measure another checkout

import panels  # noqa: E402


def diarize(diarizer, samples, **kw):
    t = time.perf_counter()
    d = diarizer.diarize(samples, **kw)
    return d, time.perf_counter() - t


def score(truth_turns, words, samples, d, seconds, *, naming=None, enrolled=()):
    hyp = [(t.speaker, t.start, t.end) for t in d.turns]
    out = {
        "der_collar_0.25": round(panels.der(truth_turns, hyp, 0.25), 4),
        "der_no_collar": round(panels.der(truth_turns, hyp, 0.0), 4),
        "speakers_true": len({t[0] for t in truth_turns}),
        "speakers_found": len({t.speaker for t in d.exclusive}),
        "words": len(words),
        "words_right_turns": round(panels.words_right(words, [w.speaker for w in panels.assign_words(words, d)],
                                                      reference=truth_turns), 4),
        "diarize_s": round(seconds, 2),
        "rtf": round(seconds / (len(samples) / panels.SR), 4),
    }
    said = panels.assign_words(words, d, samples)
    out["words_right"] = round(panels.words_right(words, [w.speaker for w in said], reference=truth_turns), 4)
    table = panels.mapping(truth_turns, hyp)
    wrong = [table.get(w.speaker) != ref[0] for w, ref in zip(said, words)]
    conf = [getattr(w, "speaker_confidence", None) for w in said]
    if all(c is not None for c in conf) and any(wrong):
        # A confidence is useful when the wrong words are the doubtful ones.
        out["wrong_words_flagged"] = round(float(np.mean([c < 0.5 for c, bad in zip(conf, wrong) if bad])), 4)
    if all(c is not None for c in conf):
        out["right_words_flagged"] = round(float(np.mean([c < 0.5 for c, bad in zip(conf, wrong) if not bad])), 4)
    cover = panels.overlap_coverage(truth_turns, hyp)
    if cover is not None:
        out["overlap_covered"] = round(cover, 4)
    if naming is not None:
        named = naming.apply(d)
        said = [w.speaker for w in panels.assign_words(words, named, samples)]
        out["words_right_named"] = round(panels.words_right(words, said, named=True), 4)
        out["named"] = {lab: name for lab, name in naming.mapping.items()}
        out["scores"] = dict(naming.scores)
        found = set(naming.mapping.values())
        out["enrolled_named"] = sum(n in found for n in enrolled)
        out["enrolled"] = len(enrolled)
    return out


def transcript(path, ref_words, ref_turns) -> dict:
    """The recording through the whole pipeline (faster-whisper's bundled tiny.en, the builtin diarizer): the
    share of its words, at the times the ASR heard them and matched to the reference's by text, on the right
    speaker. This is what a reader gets at a change of speaker; the letter-timed reference words are not."""
    from majlis.pipeline import Options, transcribe_file

    t = transcribe_file(path, options=Options(asr="faster-whisper", diarizer="builtin"))
    heard = [(w.speaker, w.start, w.end, w.word) for seg in t.segments for w in seg.words]
    share, matched = panels.transcript_words_right(ref_words, ref_turns, heard,
                                                   [(x.speaker, x.start, x.end) for x in t.turns])
    return {"transcript_words_right": round(share, 4), "transcript_words_matched": matched}


def majority(turns, d) -> dict:
    """Diarized label -> the reader it holds most of."""
    held: dict = {}
    for t in d.exclusive:
        for who, a, b in turns:
            if min(b, t.end) > max(a, t.start):
                held.setdefault(t.speaker, {}).setdefault(who, 0.0)
                held[t.speaker][who] += min(b, t.end) - max(a, t.start)
    return {lab: max(by, key=by.get) for lab, by in held.items()}


def enroll_dir(enrollment: dict, folder: Path) -> Path:
    for who, clips in enrollment.items():
        (folder / who).mkdir(parents=True, exist_ok=True)
        for i, x in enumerate(clips):
            panels.write_wav(folder / who / f"{i}.wav", x)
    return folder


def panel_cases(diarizer, seeds, seconds: float, cases: dict) -> None:
    """Score the real-voice panel of each seed, clean and on the phone line, into `cases`."""
    from majlis.speakers import name_speakers

    sets = [panels.WOMEN[:3], panels.WOMEN[2:5], panels.WOMEN[:4], panels.WOMEN[1:4]]
    for seed in seeds:
        readers = sets[seed % len(sets)]
        panel = panels.make_panel(seed, readers, seconds=seconds)
        with tempfile.TemporaryDirectory() as tmp:
            folder = enroll_dir(panel.enrollment, Path(tmp) / "all")
            for variant, x in (("clean", panel.samples), ("phone32k", panels.telephone(panel.samples))):
                d, s = diarize(diarizer, x)
                naming = name_speakers(x, d, enrollment_dir=folder, names={})
                case = cases[f"panel{seed}-{len(readers)}w-{variant}"] = score(
                    panel.turns, panel.words, x, d, s, naming=naming, enrolled=panel.speakers)
                # A stranger: one reader left out of the samples, someone absent enrolled in their place.
                absent = next(r for r in panels.WOMEN if r not in readers)
                clips = [panels.load_clip(c) for c in panels.reader_clips(absent)[: panels.SAMPLE_UTTERANCES]]
                mixed = enroll_dir({**{r: panel.enrollment[r] for r in readers[:-1]}, absent: clips},
                                   Path(tmp) / "mixed")
                other = name_speakers(x, d, enrollment_dir=mixed, names={})
                # Every diarized voice by the reader it holds most of: a reader split in two counts twice.
                hyp_truth = majority(panel.turns, d)
                case["stranger_named"] = sum(other.mapping[lab] not in (f"Unknown {i}" for i in range(1, 9))
                                             for lab, ref in hyp_truth.items() if ref == readers[-1])
                case["others_named_right"] = sum(other.mapping.get(lab) == ref for lab, ref in hyp_truth.items()
                                                 if ref in readers[:-1])
                print(variant, seed, json.dumps(cases[f"panel{seed}-{len(readers)}w-{variant}"]), file=sys.stderr)


def _resemblyzer_naming(x, d, folder):
    """Label -> name by the resemblyzer decision, the one voice-library prints get (speakers.decide), from the
    same clips: what `--speakers` named with before CAM++ prints."""
    from majlis import decision, speakers as S
    from majlis.channel import speech_spectrum

    labels = S._first_appearance(d)
    voices = S.enrollment(folder, channel=speech_spectrum(x, [(t.start, t.end) for t in d.exclusive]))
    embedded = S.voice_embeddings(x, {lab: [(t.start, t.end) for t in d.exclusive if t.speaker == lab]
                                      for lab in labels}, step=S.NAMING_STEP, max_windows=S.MAX_WINDOWS)
    rows = [lab for lab in labels if embedded[lab] is not None]
    heard, enrolled = np.stack([embedded[lab] for lab in rows]), np.stack(list(voices.values()))
    cols = list(range(len(voices)))
    pairs = decision.decide(heard, enrolled, cols, None)
    pairs += decision.split_voices(heard, enrolled, cols, pairs)
    return {rows[i]: list(voices)[j] for i, j in pairs}


def naming_cases(diarizer, seeds) -> dict:
    """Naming alone, both encoders, on the real-voice panels of `seeds`, clean and on the phone line: per
    diarized voice (by the reader it holds most of), named right, wrong or not at all; the readers nobody was
    named for; and, with one reader's samples swapped for an absent reader's, whether her voice took a name."""
    from majlis.speakers import name_speakers

    sets = [panels.WOMEN[:3], panels.WOMEN[2:5], panels.WOMEN[:4], panels.WOMEN[1:4]]
    out = {"campplus": {}, "resemblyzer": {}}
    for seed in seeds:
        readers = sets[seed % len(sets)]
        panel = panels.make_panel(seed, readers, seconds=60.0)
        absent = next(r for r in panels.WOMEN if r not in readers)
        clips = [panels.load_clip(c) for c in panels.reader_clips(absent)[: panels.SAMPLE_UTTERANCES]]
        with tempfile.TemporaryDirectory() as tmp:
            folder = enroll_dir(panel.enrollment, Path(tmp) / "all")
            mixed = enroll_dir({**{r: panel.enrollment[r] for r in readers[:-1]}, absent: clips}, Path(tmp) / "mixed")
            for variant, x in (("clean", panel.samples), ("phone32k", panels.telephone(panel.samples))):
                d = diarizer.diarize(x)
                truth = majority(panel.turns, d)
                for encoder in out:
                    if encoder == "campplus":
                        mine, other = (name_speakers(x, d, enrollment_dir=f, names={}).mapping for f in (folder, mixed))
                    else:
                        mine, other = (_resemblyzer_naming(x, d, f) for f in (folder, mixed))
                    out[encoder][f"panel{seed}-{variant}"] = {
                        "voices": len(truth),
                        "right": sum(mine.get(lab) == ref for lab, ref in truth.items()),
                        "wrong": sum(lab in mine and mine[lab] != ref for lab, ref in truth.items()),
                        "readers_missed": sum(r not in mine.values() for r in readers),
                        "stranger_named": any(other.get(lab) in (*readers, absent) for lab, ref in truth.items()
                                              if ref == readers[-1]),
                        "others_named_right": all(other.get(lab) == ref for lab, ref in truth.items()
                                                  if ref != readers[-1]),
                    }
                print(variant, seed, {e: out[e][f"panel{seed}-{variant}"] for e in out}, file=sys.stderr)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one panel of 30 s instead of four of 60 s")
    ap.add_argument("--out-dir", type=Path, default=HERE / "results")
    ap.add_argument("--panel39", type=Path, help="also the 39-minute flite panel (audio/make_panel.py --minutes 39)")
    ap.add_argument("--unseen", action="store_true",
                    help="only the real-voice panels of seeds 10-17, which no rule was chosen on "
                         "(writes speakers_unseen.json)")
    ap.add_argument("--naming", action="store_true",
                    help="only naming, CAM++ prints against resemblyzer's calibrated decision, on the real-voice "
                         "panels of seeds 0-17 (writes speakers_naming.json)")
    args = ap.parse_args(argv)

    import common

    from majlis.audio import decode
    from majlis.diarize import get_diarizer
    from majlis.speakers import name_speakers

    diarizer = get_diarizer("builtin")
    cases = {}
    if args.naming:
        common.write_result("speakers_naming", {"quick": False, "encoders": naming_cases(diarizer, range(18))},
                            args.out_dir)
        return 0
    if args.unseen:
        panel_cases(diarizer, range(10, 18), 60.0, cases)
        common.write_result("speakers_unseen", {"quick": False, "cases": cases}, args.out_dir)
        return 0

    wav, ref_turns, ref_words = panels.pyannote_sample()
    samples = decode(wav)
    d, s = diarize(diarizer, samples)
    cases["sample.wav"] = score(ref_turns, ref_words, samples, d, s)
    cases["sample.wav"].update(transcript(wav, ref_words, ref_turns))

    # The flite demo panel (synthetic voices, 3.3 min): what the builtin diarizer was tuned on, no worse.
    root = HERE.parent / "audio"
    turns, words = panels.truth_file(root / "panel.truth.json")
    x = decode(root / "panel.mp3")
    d, s = diarize(diarizer, x)
    naming = name_speakers(x, d, enrollment_dir=root / "speakers", names={})
    cases["flite-panel"] = score(turns, words, x, d, s, naming=naming, enrolled=sorted({t[0] for t in turns}))
    cases["flite-panel"].update(transcript(root / "panel.mp3", words, turns))
    if args.panel39:
        # The 39-minute flite panel: the speed bar (diarizer <= 0.05 x real time on 2 cores) and the
        # word re-check's own cost.
        turns, words = panels.truth_file(args.panel39.with_suffix(".truth.json"))
        x = decode(args.panel39)
        d, s = diarize(diarizer, x)
        t = time.perf_counter()
        case = cases["flite-panel39"] = score(turns, words, x, d, s)
        case["score_s_with_recheck"] = round(time.perf_counter() - t, 1)
        case.update(transcript(args.panel39, words, turns))

    panel_cases(diarizer, [0] if args.quick else [0, 1, 2, 3], 30.0 if args.quick else 60.0, cases)
    common.write_result("speakers", {"quick": args.quick, "cases": cases}, args.out_dir)
    print(json.dumps(cases, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
