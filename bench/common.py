"""Shared helpers for the bench/ scripts: machine facts, measured subprocesses, stats, result files.

Every measured thing runs in a fresh subprocess so its memory peak is its own. The subprocess prints one
JSON object as its last stdout line; the parent adds wall time and the peak RSS of the whole process tree
(the Python process plus ffmpeg and any other children), sampled from /proc every 200 ms.
"""

from __future__ import annotations

import glob
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": _gpu(),
        "speed_probe_s": speed_probe(),
    }


def speed_probe() -> float:
    """Seconds a fixed piece of single-threaded Python takes here (best of 3): loops, zlib and pickle, what a
    search spends its time on. Machines of the same name and size ran 2 to 3 times apart between runs
    (BENCHMARKS.md, section 3); this tells two runs' machines apart without a baseline engine."""
    import pickle
    import zlib

    packed = zlib.compress(pickle.dumps([list(range(i, i + 50)) for i in range(0, 20_000, 50)], 2))
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        total = 0
        for _ in range(80):
            total += sum(map(len, pickle.loads(zlib.decompress(packed))))
        for i in range(800_000):
            total ^= i
        best = min(best, time.perf_counter() - t)
    return round(best, 4)


def _gpu() -> str | None:
    # torch is heavy; the device list is cheap to read from /dev instead.
    return "nvidia" if Path("/dev/nvidia0").exists() else None


def self_peak_mb() -> dict[str, float]:
    """Peak RSS of this process and of its largest waited-for child (ffmpeg), from the kernel."""
    return {
        "peak_rss_self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads), its waited-for children (ffmpeg) and its live
    descendants (the pipeline's ASR child process, which lives as long as the engines do).

    Wall time on a shared 2-core machine depends on what else runs; CPU time much less so.
    """
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + _live_descendants_cpu(os.getpid())


def _live_descendants_cpu(pid: int) -> float:
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone since we listed it: its time is in RUSAGE_CHILDREN once waited for
        total += (int(fields[11]) + int(fields[12])) / tick + _live_descendants_cpu(child)  # utime, stime
    return total


def _children(pid: int) -> list[int]:
    out = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(task) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def _tree_rss_kb(root: int) -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[pid] = int(fields[1])
            rss[pid] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        for c, pp in parents.items():
            if pp == p and c not in tree:
                tree.add(c)
                frontier.append(c)
    return sum(rss.get(p, 0) for p in tree)


def run_measured(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    env: dict | None = None,
    parse_json: bool = True,
    ok_codes: Sequence[int] = (0,),
    partial_on_timeout: bool = False,
) -> dict[str, Any]:
    """Run argv; return its JSON report plus process_wall_s, peak_tree_rss_mb and rss_trace (polled).

    Raises on failure. With partial_on_timeout, a run past `timeout` is killed and its wall time and
    memory trace so far come back with timed_out=True instead of an error.
    """
    # Thread counts are left as a user would have them (torch uses every core); tests set OMP_NUM_THREADS=1.
    full_env = dict(os.environ, **(env or {}))
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT,
        start_new_session=True,
    )
    trace: list[tuple[float, int]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                trace.append((time.perf_counter() - start, _tree_rss_kb(proc.pid)))
            except Exception:
                pass
            done.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Kill the whole tree (ffmpeg too): the worker runs in its own session.
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        if not partial_on_timeout:
            raise RuntimeError(f"timed out after {timeout} s: {' '.join(argv)}")
        timed_out = True
    finally:
        done.set()
        poller.join()
    wall = time.perf_counter() - start
    if not timed_out and proc.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    report = json.loads(lines[-1]) if parse_json and lines and not timed_out else {"stdout_lines": len(lines)}
    report["returncode"] = proc.returncode
    report["timed_out"] = timed_out
    report["process_wall_s"] = round(wall, 3)
    # Other work on the machine: the 1-minute load average before and after (2 cores: above 2 is contention).
    report["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    report["peak_tree_rss_mb"] = round(max((kb for _, kb in trace), default=0) / 1024, 1)
    step = max(1, len(trace) // 200)
    report["rss_trace"] = [[round(t, 1), round(kb / 1024, 1)] for t, kb in trace[::step]]
    return report


def summary(values: Sequence[float]) -> dict[str, float]:
    vals = [float(v) for v in values]
    return {
        "median": round(statistics.median(vals), 4),
        "min": round(min(vals), 4),
        "max": round(max(vals), 4),
        "n": len(vals),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    vals = sorted(values)
    if not vals:
        raise ValueError("no values")
    k = max(0, min(len(vals) - 1, math.ceil(q / 100 * len(vals) - 1e-9) - 1))
    return vals[k]


def write_result(name: str, data: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
            "code": code_version(), **data}
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def code_version() -> str | None:
    """The commit measured, "+changes" when majlis or the benchmarks differed from it: two runs of the same
    code tell the machine's share of a difference from the code's."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "src", "bench/*.py"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout
    return head + ("+changes" if changed else "")


def emit(report: dict[str, Any]) -> None:
    """A worker's last stdout line: its JSON report."""
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


def ffmpeg() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from majlis.audio import ffmpeg_binary

    return ffmpeg_binary()


def cut(src: Path, dst: Path, start: float, duration: float) -> None:
    """Cut a slice with ffmpeg (re-encoded to 16 kHz mono WAV so the slice is exact)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-ss", f"{start:.3f}", "-t", f"{duration:.3f}",
         "-i", str(src), "-ac", "1", "-ar", "16000", str(dst)],
        check=True,
    )


def audio_duration(path: Path) -> float:
    sys.path.insert(0, str(ROOT / "src"))
    from majlis.audio import probe

    d = probe(path).duration
    if d is None:
        raise RuntimeError(f"{path}: no duration in header")
    return d
