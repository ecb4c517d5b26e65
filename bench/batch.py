"""`majlis batch` throughput with 1 and 2 workers on short slices of the demo panel.

20 slices of 20-30 s (cut with ffmpeg from audio/panel.mp3), offline engines. Each run is a fresh
`majlis batch` process into a fresh output folder (nothing cached); throughput = audio seconds / wall
seconds of the whole command, engine loading included, because that is what a user waits for.

    nice -n 19 python bench/batch.py      # 20 slices, --workers 1 and 2, 3 runs each
    python bench/batch.py --quick         # 4 slices of 10 s, one run each
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def majlis_argv() -> list[str]:
    exe = Path(sys.executable).parent / "majlis"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "majlis"]


SPEAKERS = common.ROOT / "audio" / "speakers"


def batch_argv(inputs: Path, out: Path, workers: int) -> list[str]:
    argv = [*majlis_argv(), "batch", str(inputs), "--out", str(out), "--workers", str(workers),
            "--asr", "sphinx", "--diarizer", "builtin"]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 slices of 10 s, one run per worker count")
    ap.add_argument("--audio", type=Path, default=common.ROOT / "audio" / "panel.mp3")
    ap.add_argument("--files", type=int, default=None, help="number of slices (default 20)")
    ap.add_argument("--runs", type=int, default=None, help="runs per worker count (default 3)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    args = ap.parse_args(argv)

    count = args.files or (4 if args.quick else 20)
    lo, hi = (10.0, 10.0) if args.quick else (20.0, 30.0)
    runs = args.runs or (1 if args.quick else 3)
    worker_counts = [int(w) for w in args.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="majlis-bench-batch-"))
    try:
        inputs = tmp / "in"
        inputs.mkdir()
        durations = make_slices(args.audio, inputs, count, lo, hi)
        audio_s = sum(durations)
        results = {}
        for w in worker_counts:
            rows = []
            for i in range(runs):
                out = tmp / f"out-w{w}-{i}"
                r = common.run_measured(batch_argv(inputs, out, w), parse_json=False)
                r["transcripts"] = transcripts_in(out)
                if r["transcripts"] != count:
                    raise SystemExit(f"majlis batch --workers {w} wrote {r['transcripts']} of {count} transcripts")
                r["throughput"] = round(audio_s / r["process_wall_s"], 3)
                r.pop("rss_trace", None)
                rows.append(r)
                print(f"workers {w} run {i + 1}/{runs}: {r['process_wall_s']:.1f} s, "
                      f"{r['throughput']:.2f} audio s/s, peak {r['peak_tree_rss_mb']:.0f} MB", file=sys.stderr,
                      flush=True)
            results[str(w)] = {"wall_s": common.summary([r["process_wall_s"] for r in rows]),
                               "throughput": common.summary([r["throughput"] for r in rows]),
                               "peak_tree_rss_mb": common.summary([r["peak_tree_rss_mb"] for r in rows]),
                               "runs": rows}
        data = {
            "quick": args.quick,
            "files": count,
            "audio_s": round(audio_s, 2),
            "slice_s": {"min": round(min(durations), 2), "max": round(max(durations), 2)},
            "command": "majlis " + " ".join(batch_argv(Path("IN"), Path("OUT"), 0)[len(majlis_argv()):]).replace(
                "--workers 0", "--workers N"),
            "runs": runs,
            "workers": results,
        }
        if "1" in results and "2" in results:
            data["scaling_2_vs_1"] = round(results["2"]["throughput"]["median"] / results["1"]["throughput"]["median"], 3)
        print(common.write_result("batch", data, args.out_dir))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
