"""Real Whisper through the whole pipeline, beside each engine alone, on the same recording, each in a fresh
process: the pipeline (faster-whisper tiny.en + builtin diarizer + naming + alignment), faster-whisper alone,
openai-whisper alone on the same tiny.en weights (converted, bench/ct2_whisper.py), sphinx alone and the
diarizer alone. Real-time factor, overhead ratio (pipeline wall / the slower of faster-whisper alone and the
diarizer alone), peak RSS of the process tree, and each engine's WER against the recording's truth.

    python bench/real_whisper.py                 # the 39-minute panel (audio/panel39.*, made if absent)
    python bench/real_whisper.py --quick         # the 3-minute demo panel, no openai-whisper run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import quality  # noqa: E402

TARGETS = {"rtf": 0.10, "overhead_ratio": 1.05, "peak_rss_mb": 1536}
KINDS = ("pipeline", "faster-whisper", "whisper", "sphinx", "diarize")


def truth_for(audio: Path) -> Path:
    return audio.with_name(audio.stem + ".truth.json")


def worker(kind: str, audio: Path, checkpoint: Path | None) -> dict:
    from majlis import pipeline
    from majlis.audio import SAMPLE_RATE, decode

    t = time.perf_counter()
    if kind == "pipeline":
        options = pipeline.Options(asr="faster-whisper", diarizer="builtin",
                                   speakers_dir=common.ROOT / "audio" / "speakers")
        engines = pipeline.Engines.load(options)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        tr = pipeline.transcribe_file(audio, options=options, engines=engines)
        wall = time.perf_counter() - t
        segments, duration, name = tr.segments, tr.duration, tr.engines["asr"]
    elif kind == "diarize":
        from majlis.diarize import get_diarizer

        engine = get_diarizer("builtin")
        load_s = time.perf_counter() - t
        samples = decode(audio)
        t = time.perf_counter()
        engine.diarize(samples)
        wall = time.perf_counter() - t
        segments, duration, name = None, len(samples) / SAMPLE_RATE, engine.name
    else:
        from majlis.asr import get_asr

        extra = {"model": str(checkpoint), "language": "en", "device": "cpu"} if kind == "whisper" else {}
        engine = get_asr(kind, **extra)
        load_s = time.perf_counter() - t
        samples = decode(audio)
        t = time.perf_counter()
        segments = engine.transcribe(samples).segments
        wall = time.perf_counter() - t
        duration, name = len(samples) / SAMPLE_RATE, engine.name
    out = {"engine": name, "load_s": round(load_s, 3), "wall_s": round(wall, 3), "duration_s": round(duration, 3),
           "rtf": round(wall / duration, 4)}
    if segments is not None:  # scored by the parent: whisper's normaliser imports torch, which is not ours to count
        out["text"] = quality.transcript_text(segments)
    return out


def measure(kind: str, audio: Path, checkpoint: Path | None) -> dict:
    argv = [sys.executable, __file__, "--worker", kind, "--audio", str(audio)]
    if checkpoint:
        argv += ["--checkpoint", str(checkpoint)]
    r = common.run_measured(argv)
    r["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if "text" in r:
        reference = " ".join(u.text for u in quality.panel_utterances(truth_for(audio)))
        r["wer"] = round(quality.wer(reference, r.pop("text")), 4)
    print(f"  {kind:15s} wall {r['wall_s']:.1f} s, rtf {r['rtf']:.3f}, WER {r.get('wer', '-')}, "
          f"peak {r['peak_tree_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the 3-minute demo panel; openai-whisper left out")
    ap.add_argument("--audio", type=Path, help="a recording with <stem>.truth.json beside it")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    ap.add_argument("--only", help="comma-separated runs to measure again (e.g. pipeline,faster-whisper,diarize); "
                    "the other rows are kept from the existing results file, each with its own load column")
    ap.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(common.ROOT / "src"))
    if args.worker:
        common.emit(worker(args.worker, args.audio, args.checkpoint))
        return 0

    if args.audio:
        audio = args.audio
    elif args.quick:
        audio = common.ROOT / "audio" / "panel.mp3"
    else:
        from pipeline import make_panel39

        audio = make_panel39()
    kinds = [k for k in KINDS if not (args.quick and k == "whisper")]
    kept: dict = {}
    if args.only:
        earlier = json.loads((args.out_dir / "real_whisper.json").read_text())
        if earlier["audio"] != audio.name:
            raise SystemExit(f"--only: the results file measured {earlier['audio']}, not {audio.name}")
        only = set(args.only.split(","))
        kept = {k: dict(r, measured=r.get("measured", earlier["created"])) for k, r in earlier["runs"].items()
                if k not in only}
        kinds = [k for k in kinds if k in only]
    with tempfile.TemporaryDirectory(prefix="majlis-bench-whisper-") as tmp:
        checkpoint = None
        if "whisper" in kinds:
            import ct2_whisper
            from majlis.asr.faster_whisper import bundled_model_dir

            checkpoint = ct2_whisper.convert(bundled_model_dir(), Path(tmp) / "tiny.en.pt")
        fresh = {k: measure(k, audio, checkpoint) for k in kinds}
    runs = {k: fresh.get(k) or kept[k] for k in KINDS if k in fresh or k in kept}
    slower_alone = max(runs["faster-whisper"]["wall_s"], runs["diarize"]["wall_s"])
    data = {
        "quick": args.quick,
        "audio": audio.name,
        "duration_s": runs["pipeline"]["duration_s"],
        "runs": runs,
        "overhead_ratio": round(runs["pipeline"]["wall_s"] / slower_alone, 4),
        "targets": TARGETS,
    }
    data["verdict"] = {
        "rtf_ok": runs["pipeline"]["rtf"] <= TARGETS["rtf"],
        "overhead_ok": data["overhead_ratio"] <= TARGETS["overhead_ratio"],
        "peak_rss_ok": runs["pipeline"]["peak_tree_rss_mb"] <= TARGETS["peak_rss_mb"],
    }
    print(common.write_result("real_whisper", data, args.out_dir))
    print(json.dumps(data["verdict"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
