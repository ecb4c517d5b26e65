"""The whole offline pipeline against its two engines alone, on the same audio, each in a fresh process.

For every round: `majlis.pipeline.transcribe_file` (sphinx + builtin diarizer + naming + alignment), then
the ASR engine alone and the diarizer alone on the same decoded samples. Overhead ratio =
pipeline wall / (ASR alone + diarizer alone); the pipeline runs ASR (sphinx, in a child process) and
diarization side by side, so on two free cores it can go below 1. Then memory on a 4-hour file (the 39-minute panel concatenated).

    python audio/make_panel.py --minutes 39 --out audio/panel39   # the 39-minute panel (git-ignored)
    nice -n 19 python bench/pipeline.py                           # 3 rounds on it, plus the 4-hour file
    python bench/pipeline.py --quick                              # a 1-minute slice, one round
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGETS = {"overhead_ratio": 1.05, "rtf": 0.35, "peak_rss_mb": 3072, "flat_rss_ratio": 1.15}
AUDIO = common.ROOT / "audio"
SPEAKERS = AUDIO / "speakers"


# ---------------------------------------------------------------- workers (each in a fresh process)

def _options():
    from majlis.pipeline import Options

    enrolled = SPEAKERS.is_dir() and any(SPEAKERS.iterdir())
    return Options(asr="sphinx", diarizer="builtin", speakers_dir=SPEAKERS if enrolled else None)


class StageClock:
    """First and last progress-hook call per stage, and exact spans of the pipeline's stage functions."""

    def __init__(self, profile: bool = False) -> None:
        self.t0 = time.perf_counter()
        self.hooks: dict[str, dict] = {}
        self.spans: dict[str, list[float]] = {}
        # One cProfile per stage call: ASR and diarization run in different threads, and a profiler only
        # sees the thread it was enabled in.
        self.profiles: dict[str, object] | None = {} if profile else None

    def hook(self, stage: str, completed: float, total: float) -> None:
        t = round(time.perf_counter() - self.t0, 3)
        h = self.hooks.setdefault(stage, {"first_s": t, "last_s": t, "calls": 0})
        h["last_s"] = t
        h["calls"] += 1

    def wrap(self, module, name: str) -> None:
        fn = getattr(module, name)

        def timed(*a, **k):
            start = time.perf_counter() - self.t0
            try:
                if self.profiles is None:
                    return fn(*a, **k)
                import cProfile

                prof = self.profiles[name] = cProfile.Profile()
                return prof.runcall(fn, *a, **k)
            finally:
                self.spans[name] = [round(start, 3), round(time.perf_counter() - self.t0, 3)]

        setattr(module, name, timed)


def profile_text(prof, top: int = 22) -> str:
    import io
    import pstats

    out = io.StringIO()
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats("cumulative").print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    return "\n".join(lines[start:])


def worker_pipeline(path: Path, profile: bool = False) -> dict:
    from majlis import pipeline

    options = _options()
    t = time.perf_counter()
    engines = pipeline.Engines.load(options)
    load_s = time.perf_counter() - t
    clock = StageClock(profile)
    for name in ("decode_stage", "asr_stage", "diarize_stage", "naming_stage", "assemble"):
        clock.wrap(pipeline, name)
    cpu = common.cpu_seconds()
    clock.t0 = time.perf_counter()
    tr = pipeline.transcribe_file(path, options=options, engines=engines, hook=clock.hook)
    wall = time.perf_counter() - clock.t0
    cpu = common.cpu_seconds() - cpu
    return {"load_s": round(load_s, 3), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "duration_s": round(tr.duration, 3),
            "hooks": clock.hooks, "spans": clock.spans, "segments": len(tr.segments), "words": len(tr.words),
            "speakers": list(tr.speakers), "engines": dict(tr.engines), **common.self_peak_mb(),
            **({"profiles": {k: profile_text(p) for k, p in clock.profiles.items()}} if profile else {})}


def worker_engine(path: Path, which: str) -> dict:
    from majlis import audio

    t = time.perf_counter()
    samples = audio.decode(path)
    decode_s = time.perf_counter() - t
    if which == "decode":  # the memory floor of holding the whole recording
        return {"decode_s": round(decode_s, 3), "duration_s": round(len(samples) / audio.SAMPLE_RATE, 3),
                "samples_mb": round(samples.nbytes / 2**20, 1), **common.self_peak_mb()}
    options = _options()
    clock = StageClock()
    t = time.perf_counter()
    if which == "asr":
        from majlis.asr import get_asr

        engine = get_asr(options.asr)
        load_s = time.perf_counter() - t
        cpu = common.cpu_seconds()
        clock.t0 = t = time.perf_counter()
        res = engine.transcribe(samples, hook=clock.hook)
        extra = {"segments": len(res.segments), "words": sum(len(s.words) for s in res.segments)}
    else:
        from majlis.diarize import get_diarizer

        engine = get_diarizer(options.diarizer)
        load_s = time.perf_counter() - t
        cpu = common.cpu_seconds()
        clock.t0 = t = time.perf_counter()
        res = engine.diarize(samples, hook=clock.hook)
        extra = {"turns": len(res.turns), "labels": list(res.labels)}
    wall = time.perf_counter() - t
    cpu = common.cpu_seconds() - cpu
    return {"decode_s": round(decode_s, 3), "load_s": round(load_s, 3), "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "duration_s": round(len(samples) / audio.SAMPLE_RATE, 3), "engine": engine.name,
            "hooks": clock.hooks, **extra, **common.self_peak_mb()}


# ---------------------------------------------------------------- driver

def plot_rss(rounds: list[dict], long: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, r in enumerate(rounds):
        tr = r["pipeline"]["rss_trace"]
        ax.plot([t / 60 for t, _ in tr], [mb for _, mb in tr], color="tab:blue", alpha=0.8,
                label="39-min panel, pipeline (the rounds)" if i == 0 else None)
    if long:
        for key, color, label in (("short_pipeline", "tab:purple", "39-min panel, pipeline, same code as the 4-h lines"),
                                  ("pipeline", "tab:red", "4-h file, pipeline"),
                                  ("diarize", "tab:green", "4-h file, diarizer alone"),
                                  ("decode", "tab:gray", "4-h file, decode only")):
            if key not in long:
                continue
            tr = long[key]["rss_trace"]
            ax.plot([t / 60 for t, _ in tr], [mb for _, mb in tr], color=color, label=label)
    ax.axhline(TARGETS["peak_rss_mb"], color="gray", ls=":", lw=0.8)
    ax.set_xlabel("minutes since the process started")
    ax.set_ylabel("RSS of the process tree (MB)")
    ax.set_title("Memory over time (offline pipeline)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def measure(kind: str, path: Path, timeout: float | None = None, partial: bool = False) -> dict:
    argv = [sys.executable, __file__, "--worker", kind, "--audio", str(path)]
    r = common.run_measured(argv, timeout=timeout, partial_on_timeout=partial)
    print(f"  {kind:8s} {path.name}: process {r['process_wall_s']:.1f} s, wall {r.get('wall_s', '-')} s, "
          f"peak {r['peak_tree_rss_mb']:.0f} MB{' (TIMED OUT)' if r['timed_out'] else ''}",
          file=sys.stderr, flush=True)
    return r


def find_panel39() -> Path | None:
    for ext in (".mp3", ".wav", ".flac", ".ogg", ".m4a"):
        if (AUDIO / f"panel39{ext}").exists():
            return AUDIO / f"panel39{ext}"
    return None


def make_panel39() -> Path:
    found = find_panel39()
    if found:
        return found
    print("making the 39-minute panel (audio/make_panel.py --minutes 39) ...", file=sys.stderr, flush=True)
    # Its enrollment clips go to a scratch folder: audio/speakers is the committed demo's.
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, str(AUDIO / "make_panel.py"), "--minutes", "39", "--out",
                        str(AUDIO / "panel39"), "--speakers-dir", scratch], check=True, cwd=common.ROOT)
    found = find_panel39()
    if not found:
        raise SystemExit("audio/make_panel.py ran but no audio/panel39.* appeared")
    return found


def long_verdict(rounds: list[dict], long: dict) -> dict:
    """The long file's peak against the target and against the 39-minute file's peak (from the same code:
    the long section's own 39-minute run where it has one)."""
    long_peak = max(long[k]["peak_tree_rss_mb"] for k in ("pipeline", "decode", "diarize"))
    short = [long["short_pipeline"]] if "short_pipeline" in long else [r["pipeline"] for r in rounds]
    short_peak = max(r["peak_tree_rss_mb"] for r in short)
    return {"long_peak_rss_mb": long_peak, "long_peak_rss_ok": long_peak <= TARGETS["peak_rss_mb"],
            "long_vs_short_rss": round(long_peak / short_peak, 3)}


def remeasure_long(args) -> int:
    """The long-file section again, after a change to the code, into the existing results file (the 39-min
    rounds stay): decode, diarizer and pipeline on the long file, and one pipeline run on the 39-min file so
    that long and short peaks come from the same code. The section it replaces is kept as `long_before`."""
    results = args.out_dir / "pipeline.json"
    data = json.loads(results.read_text())
    short_path = args.audio or make_panel39()
    long_path = make_long(short_path, args.long_hours)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    long = {"audio": long_path.name, "duration_s": round(common.audio_duration(long_path), 1),
            "timeout_s": args.long_timeout, "measured": stamp,
            "short_pipeline": measure("pipeline", short_path),
            "short_decode": measure("decode", short_path),
            "decode": measure("decode", long_path),
            "diarize": measure("diarize", long_path, timeout=args.long_timeout, partial=True),
            "pipeline": measure("pipeline", long_path, timeout=args.long_timeout, partial=True)}
    for key in ("short_pipeline", "decode", "diarize", "pipeline"):
        long[key]["measured"] = stamp
    previous = data.get("long")
    if previous:
        data["long_before"] = {k: v for k, v in previous.items() if k != "long_before"}
    data["long"] = long
    data["verdict"].update(long_verdict(data["rounds"], long))
    print(common.write_result("pipeline", data, args.out_dir))
    plot_rss(data["rounds"], long, args.out_dir / "pipeline_rss.png")
    return 0


def make_long(src: Path, hours: float) -> Path:
    """Concatenate `src` with itself (stream copy) to at least `hours` hours: audio/<stem>.long.<ext>."""
    dst = src.with_name(f"{src.stem}.{hours:g}h.long{src.suffix}")
    if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    copies = int(hours * 3600 // common.audio_duration(src)) + 1
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(f"file '{src.resolve()}'\n" for _ in range(copies)))
    tmp = dst.with_name(dst.stem + ".tmp" + dst.suffix)
    subprocess.run([common.ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe",
                    "0", "-i", f.name, "-t", f"{hours * 3600:g}", "-c", "copy", str(tmp)], check=True)
    Path(f.name).unlink()
    tmp.replace(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a 1-minute slice of audio/panel.mp3, one round")
    ap.add_argument("--audio", type=Path, help="recording to measure (default: audio/panel39.*, made if absent)")
    ap.add_argument("--runs", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the --quick slice")
    ap.add_argument("--long-hours", type=float, default=4.0, help="length of the long file (0: skip it)")
    ap.add_argument("--long-timeout", type=float, default=25 * 60,
                    help="seconds the full pipeline may run on the long file before it is stopped")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    ap.add_argument("--worker", choices=("pipeline", "profile", "asr", "decode", "diarize"), help=argparse.SUPPRESS)
    ap.add_argument("--long-from", type=Path, help="take the long-file section from an earlier result file "
                    "instead of measuring it again (it is labelled with that run's date)")
    ap.add_argument("--no-profile", action="store_true", help="skip the extra profiled pipeline run")
    ap.add_argument("--long-only", action="store_true",
                    help="measure only the long-file section again (decode, diarizer and pipeline on the long file, "
                    "one pipeline run on the 39-min file) into the existing results file")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(common.ROOT / "src"))
    if args.worker:
        if args.worker in ("pipeline", "profile"):
            report = worker_pipeline(args.audio, profile=args.worker == "profile")
        else:
            report = worker_engine(args.audio, args.worker)
        common.emit(report)
        return 0

    if args.long_only:
        return remeasure_long(args)
    tmp = Path(tempfile.mkdtemp(prefix="majlis-bench-pipeline-"))
    try:
        if args.quick:
            src = args.audio or AUDIO / "panel.mp3"
            path = tmp / f"slice{args.seconds:g}.wav"
            common.cut(src, path, 0.0, args.seconds)
        else:
            path = args.audio or make_panel39()
        runs = args.runs or (1 if args.quick else 3)
        duration = common.audio_duration(path)
        rounds = []
        for i in range(runs):
            print(f"round {i + 1}/{runs} on {path.name} ({duration / 60:.1f} min)", file=sys.stderr, flush=True)
            rounds.append({k: measure(k, path) for k in ("pipeline", "asr", "diarize")})
        for r in rounds:
            r["overhead_ratio"] = round(r["pipeline"]["wall_s"] / (r["asr"]["wall_s"] + r["diarize"]["wall_s"]), 4)
            r["rtf"] = round(r["pipeline"]["wall_s"] / duration, 4)
            # CPU-seconds per audio second: what the run costs whatever else shares the machine.
            r["cpu_rtf"] = round(r["pipeline"]["cpu_s"] / duration, 4)
            r["cpu_overhead_ratio"] = round(r["pipeline"]["cpu_s"] / (r["asr"]["cpu_s"] + r["diarize"]["cpu_s"]), 4)
            r["process_rtf"] = round(r["pipeline"]["process_wall_s"] / duration, 4)

        profile = None
        if not (args.no_profile or args.quick):
            prof = measure("profile", path)
            profile = {"note": "one extra run, each stage under its own cProfile (threads profiled separately); "
                               f"wall under the profiler {prof['wall_s']} s",
                       "stages": prof["profiles"]}

        long = long_before = None
        if args.long_from:
            earlier = json.loads(args.long_from.read_text())
            long = dict(earlier["long"], reused_from=earlier["created"])
            long_before = earlier.get("long_before")
        elif not args.quick and args.long_hours > 0:
            long_path = make_long(path, args.long_hours)
            long_dur = common.audio_duration(long_path)
            print(f"long file {long_path.name} ({long_dur / 3600:.2f} h)", file=sys.stderr, flush=True)
            long = {"audio": long_path.name, "duration_s": round(long_dur, 1),
                    "decode": measure("decode", long_path),
                    "diarize": measure("diarize", long_path, timeout=args.long_timeout, partial=True),
                    "pipeline": measure("pipeline", long_path, timeout=args.long_timeout, partial=True),
                    "timeout_s": args.long_timeout}
            short_decode = measure("decode", path)
            long["short_decode"] = short_decode

        def s(key, sub=None):
            return common.summary([(r[key][sub] if sub else r[key]) for r in rounds])

        peaks = [r["pipeline"]["peak_tree_rss_mb"] for r in rounds]
        data = {
            "quick": args.quick,
            "audio": path.name if not args.quick else f"{(args.audio or AUDIO / 'panel.mp3').name} [0:{args.seconds:g}]",
            "duration_s": round(duration, 2),
            "runs": runs,
            "options": {"asr": "sphinx", "diarizer": "builtin", "speakers_dir": "audio/speakers"},
            "summary": {
                "pipeline_wall_s": s("pipeline", "wall_s"),
                "pipeline_process_wall_s": s("pipeline", "process_wall_s"),
                "pipeline_cpu_s": s("pipeline", "cpu_s"),
                "asr_alone_s": s("asr", "wall_s"),
                "asr_alone_cpu_s": s("asr", "cpu_s"),
                "diarize_alone_cpu_s": s("diarize", "cpu_s"),
                "cpu_overhead_ratio": s("cpu_overhead_ratio"),
                "cpu_rtf": s("cpu_rtf"),
                "diarize_alone_s": s("diarize", "wall_s"),
                "overhead_ratio": s("overhead_ratio"),
                "rtf": s("rtf"),
                "process_rtf": s("process_rtf"),
                "pipeline_peak_rss_mb": common.summary(peaks),
                "asr_peak_rss_mb": s("asr", "peak_tree_rss_mb"),
                "diarize_peak_rss_mb": s("diarize", "peak_tree_rss_mb"),
            },
            "rounds": rounds,
            "long": long,
            **({"long_before": long_before} if long_before else {}),
            "profile": profile,
            "targets": TARGETS,
        }
        med = data["summary"]
        data["verdict"] = {
            "overhead_ok": med["overhead_ratio"]["median"] <= TARGETS["overhead_ratio"],
            "rtf_ok": med["rtf"]["median"] <= TARGETS["rtf"],
            "peak_rss_ok": max(peaks) <= TARGETS["peak_rss_mb"],
        }
        if long:
            data["verdict"].update(long_verdict(rounds, long))
        print(common.write_result("pipeline", data, args.out_dir))
        plot_rss(rounds, long, args.out_dir / "pipeline_rss.png")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
