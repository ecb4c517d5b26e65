"""`majlis batch` throughput with 1 and 2 workers, local executor and Dask LocalCluster, on short slices of
the demo panel; and the client's own cost per file, which bounds how far one client scales.

20 slices of 20-30 s (cut with ffmpeg from audio/panel.mp3), offline engines. Each run is a fresh
`majlis batch` process into a fresh output folder (nothing cached); throughput = audio seconds / wall
seconds of the whole command, engine loading (and for Dask the cluster's start) included, because that is
what a user waits for. Runs go round the configurations in turn, so load from elsewhere falls on all alike.

The client cost: what the process running `majlis batch` does for each file whatever executes it (the
workers' stage events into the ledger, the transcript read and added to the index, the episode's row),
timed in this process on the benchmark's own transcripts and on synthetic hour-long ones (bench/corpus.py).

    nice -n 19 python bench/batch.py      # 20 slices, local 1 and 2, dask 1 and 2 workers, 3 runs each
    python bench/batch.py --quick         # 4 slices of 10 s, one run each
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def majlis_argv() -> list[str]:
    exe = Path(sys.executable).parent / "majlis"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "majlis"]


SPEAKERS = common.ROOT / "audio" / "speakers"


def batch_argv(inputs: Path, out: Path, workers: int, executor: str = "local") -> list[str]:
    # json only, as measured before batch's --format defaulted to all
    argv = [*majlis_argv(), "batch", str(inputs), "--out", str(out), "--workers", str(workers),
            "--asr", "sphinx", "--diarizer", "builtin", "--format", "json"]
    if executor != "local":
        argv += ["--executor", executor]
    if SPEAKERS.is_dir() and any(SPEAKERS.iterdir()):  # as bench/pipeline.py: speakers named from voices
        argv += ["--speakers", "audio/speakers"]
    return argv


def make_slices(src: Path, dst: Path, count: int, lo: float, hi: float) -> list[float]:
    """Deterministic slice lengths in [lo, hi], starts spread over the recording (slices may overlap)."""
    total = common.audio_duration(src)
    lengths = [lo + (hi - lo) * ((i * 7) % 11) / 10 for i in range(count)]
    for i, length in enumerate(lengths):
        length = min(length, total)
        start = (i * 37.0) % max(total - length, 1e-3)
        common.cut(src, dst / f"clip_{i:02d}.wav", start, length)
    return [common.audio_duration(p) for p in sorted(dst.glob("clip_*.wav"))]


def transcripts_in(out: Path) -> int:
    n = 0
    for p in out.rglob("*.json"):
        if any(part.startswith(".") for part in p.relative_to(out).parts):  # stage caches, the ledger
            continue
        try:
            if json.loads(p.read_text()).get("schema") == "majlis.transcript/1":
                n += 1
        except (ValueError, OSError, AttributeError):
            continue
    return n


def client_cost(transcripts: list[Path], work: Path) -> dict:
    """Seconds the client spends per file, as run_batch does it for any executor: ten stage events (start and
    done of decode, asr, diarize, naming, exports) into the ledger, then the file's end (read the JSON
    transcript, add it to the index in one commit, the ledger's episode and run rows)."""
    sys.path.insert(0, str(common.ROOT / "src"))
    from majlis.batch.run import _Run
    from majlis.batch.worker import BatchEvent, FileResult, Settings
    from majlis.batch.collection import Job
    from majlis.batch.ledger import Ledger
    from majlis.pipeline import Options

    out = work / "out"
    out.mkdir(parents=True)
    names = []
    for path in transcripts:
        shutil.copy(path, out / path.name)
        names.append(path.stem)
    settings = Settings(Options(), str(out), ("json",), "")
    seconds = []
    with Ledger.for_out(out) as ledger:
        ledger.register((ep, f"/archive/{ep}.wav", f"{ep}.wav", {}) for ep in names)
        run = ledger.start_run("bench", len(names))
        state = _Run(ledger, run, out, settings, work / "index", {ep: i for i, ep in enumerate(names, 1)},
                     lambda e: None)
        state.open_index()
        for ep in names:
            t = time.perf_counter()
            for stage in ("decode", "asr", "diarize", "naming", "exports"):
                state.on_event(BatchEvent("stage", ep, stage, "start"))
                info = {"outputs": [f"{ep}.json"]} if stage == "exports" else {}
                state.on_event(BatchEvent("stage", ep, stage, "done", 1.0, key="k" * 64, info=info))
            state.finish(Job(f"/archive/{ep}.wav", f"{ep}.wav", ep), "plan", FileResult(
                ep, True, sha256="0" * 64, duration=60.0, transcript_key=ep, outputs=(f"{ep}.json",)))
            seconds.append(time.perf_counter() - t)
        if state._index is not None:
            state._index.close()
    docs = [json.loads(p.read_text()) for p in transcripts]
    return {"files": len(seconds), "seconds_per_file": common.summary(seconds),
            "segments_per_file": common.summary([len(d["segments"]) for d in docs]),
            "audio_minutes_per_file": common.summary([d["duration"] / 60 for d in docs]),
            "seconds_per_audio_hour": round(sum(seconds) / (sum(d["duration"] for d in docs) / 3600), 4)}


def synthetic_hours(folder: Path, count: int) -> list[Path]:
    """`count` synthetic episodes of 30-60 minutes (~150 words a minute, bench/corpus.py), as JSON transcripts."""
    import corpus

    sys.path.insert(0, str(common.ROOT / "src"))
    from majlis.export.writers import write_transcript

    lang = corpus.archive_language()
    paths = []
    for i in range(count):
        spec = next(corpus.episodes(lang, 1.0, seed=7, start_index=i))
        paths += [Path(p) for p in write_transcript(corpus.to_transcript(spec), folder, ["json"])]
    return paths


def result(quick: bool, count: int, durations: list[float], rows: dict[str, list[dict]], cost: dict) -> dict:
    configs = {}
    for name, rs in rows.items():
        executor, w = name.split(":")
        configs[name] = {"executor": executor, "workers": int(w),
                         "wall_s": common.summary([r["process_wall_s"] for r in rs]),
                         "throughput": common.summary([r["throughput"] for r in rs]),
                         "peak_tree_rss_mb": common.summary([r["peak_tree_rss_mb"] for r in rs]),
                         "runs": rs}
    return {
        "quick": quick,
        "files": count,
        "audio_s": round(sum(durations), 2),
        "slice_s": {"min": round(min(durations), 2), "max": round(max(durations), 2)},
        "command": "majlis " + " ".join(batch_argv(Path("IN"), Path("OUT"), 0)[len(majlis_argv()):]).replace(
            "--workers 0", "--workers N [--executor dask]"),
        "runs": min(len(rs) for rs in rows.values()),
        "configs": configs,
        "client_cost": cost,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 slices of 10 s, one run per configuration")
    ap.add_argument("--audio", type=Path, default=common.ROOT / "audio" / "panel.mp3")
    ap.add_argument("--files", type=int, default=None, help="number of slices (default 20)")
    ap.add_argument("--runs", type=int, default=None, help="runs per configuration (default 3)")
    ap.add_argument("--configs", default="local:1,local:2,dask:1,dask:2", help="comma-separated EXECUTOR:WORKERS")
    ap.add_argument("--hour-files", type=int, default=None, help="synthetic 1-hour transcripts for the client "
                    "cost (default 10)")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    args = ap.parse_args(argv)

    count = args.files or (4 if args.quick else 20)
    lo, hi = (10.0, 10.0) if args.quick else (20.0, 30.0)
    runs = args.runs or (1 if args.quick else 3)
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="majlis-bench-batch-"))
    try:
        inputs = tmp / "in"
        inputs.mkdir()
        durations = make_slices(args.audio, inputs, count, lo, hi)
        audio_s = sum(durations)
        rows: dict[str, list[dict]] = {f"{e}:{w}": [] for e, w in configs}
        cost = None
        for i in range(runs):
            for executor, w in configs:
                out = tmp / f"out-{executor}-w{w}-{i}"
                r = common.run_measured(batch_argv(inputs, out, w, executor), parse_json=False)
                r["transcripts"] = transcripts_in(out)
                if r["transcripts"] != count:
                    raise SystemExit(f"majlis batch --executor {executor} --workers {w} wrote {r['transcripts']} "
                                     f"of {count} transcripts")
                r["throughput"] = round(audio_s / r["process_wall_s"], 3)
                r.pop("rss_trace", None)
                rows[f"{executor}:{w}"].append(r)
                print(f"{executor} {w} worker(s) run {i + 1}/{runs}: {r['process_wall_s']:.1f} s, "
                      f"{r['throughput']:.2f} audio s/s, peak {r['peak_tree_rss_mb']:.0f} MB, load "
                      f"{r['loadavg_1m']}", file=sys.stderr, flush=True)
                if cost is None and (executor, w) == configs[-1]:
                    cost = {"short": client_cost(sorted(out.glob("*.json")), tmp / "cost-short"),
                            "hour": client_cost(synthetic_hours(tmp / "hours", args.hour_files or
                                                                (2 if args.quick else 10)), tmp / "cost-hour")}
                    print(f"client cost per file: {cost['short']['seconds_per_file']['median'] * 1000:.1f} ms "
                          f"(short), {cost['hour']['seconds_per_file']['median'] * 1000:.1f} ms (hour-long)",
                          file=sys.stderr, flush=True)
                shutil.rmtree(out)
            # Written after every round: a run cut short keeps the rounds it finished.
            print(common.write_result("batch", result(args.quick, count, durations, rows, cost), args.out_dir))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
