"""The web server under load while the index is being written: latency and errors of `majlis serve`.

A synthetic archive (bench/corpus.py) is indexed into a temporary folder; `majlis serve` runs on it as its
own process on a loopback port; a writer process re-indexes episodes one commit after another for the whole
run; 8 client threads send 2,000 requests over keep-alive connections: single words, phrases, speaker
filters and the search page. Reports latency percentiles, requests per second, non-200 answers and
connection errors, and the commits that landed during the run. Loopback only; bounded in time.
Writes bench/results/web.json.

    python bench/web.py            # 20 h archive, 8 clients, 2,000 requests
    python bench/web.py --quick    # 1 h, 2 clients, 200 requests
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import corpus  # noqa: E402

TARGETS = {"p99_ms": 100.0, "errors": 0}
STOP_FILE = "stop"


def build_index(index_dir: Path, hours: float, seed: int) -> tuple[corpus.Language, list[str]]:
    from majlis.search import Index

    lang = corpus.archive_language()
    specs = list(corpus.episodes(lang, hours, seed=seed))
    with Index(index_dir, create=True) as index:
        for at in range(0, len(specs), 10):
            index.add([corpus.to_transcript(s) for s in specs[at:at + 10]])
    speakers = sorted({name for s in specs for name in s["speakers"]})
    return lang, speakers


def writer(index_dir: Path, hours: float, seed: int, pause: float) -> int:
    """Re-index episodes, one commit each, until STOP_FILE appears beside the index; prints the count."""
    from majlis.search import Index

    # Episodes of their own (ids from 100,000): replacing the archive's would take speakers the clients ask for.
    specs = list(corpus.episodes(corpus.archive_language(), min(hours, 2.0), seed=seed, start_index=100_000))
    commits = 0
    with Index(index_dir) as index:
        while not (index_dir.parent / STOP_FILE).exists():
            index.add([corpus.to_transcript(specs[commits % len(specs)])])
            commits += 1
            if commits == 1:
                print("ready", flush=True)  # the clients start once commits are under way
            time.sleep(pause)
    print(json.dumps({"commits": commits}))
    return 0


def requests_for(lang: corpus.Language, speakers: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = lang.content_words()
    phrases = lang.phrases(rng, 50)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append("/api/search?" + urlencode({"q": rng.choice(words)}))
        elif kind == 1:
            out.append("/api/search?" + urlencode({"q": f'"{rng.choice(phrases)}"'}))
        elif kind == 2:
            out.append("/api/search?" + urlencode({"q": rng.choice(words), "speaker": rng.choice(speakers)}))
        else:
            out.append("/search?" + urlencode({"q": rng.choice(words)}))
    return out


def client(port: int, paths: list[str], rows: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for path in paths:
        t0 = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            rows.append((time.perf_counter() - t0, response.status, path))
            if response.status != 200 and len(errors) < 5:
                errors.append(f"{response.status} {path}: {body[:200].decode('utf-8', 'replace')}")
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"{type(e).__name__}: {e}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()


def serve(index_dir: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "majlis", "serve", "--index", str(index_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=common.ROOT)
    line = proc.stdout.readline()
    if " at http://" not in line:
        proc.kill()
        raise SystemExit(f"majlis serve did not start: {line}{proc.stderr.read()}")
    return proc, int(line.split(" at ")[1].split()[0].rstrip("/").rsplit(":", 1)[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 h archive, 2 clients, 200 requests")
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument("--clients", type=int, default=None)
    ap.add_argument("--requests", type=int, default=None)
    ap.add_argument("--commit-pause", type=float, default=0.5, help="seconds between the writer's commits")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    ap.add_argument("--writer", type=Path, help=argparse.SUPPRESS)  # internal: run as the writer process
    args = ap.parse_args(argv)
    hours = args.hours or (1.0 if args.quick else 20.0)
    if args.writer:
        return writer(args.writer, hours, 99, args.commit_pause)
    clients = args.clients or (2 if args.quick else 8)
    total = args.requests or (200 if args.quick else 2000)

    tmp = Path(tempfile.mkdtemp(prefix="majlis-bench-web-"))
    server = writer_proc = None
    try:
        index_dir = tmp / "index"
        t0 = time.perf_counter()
        lang, speakers = build_index(index_dir, hours, seed=1)
        build_s = time.perf_counter() - t0
        server, port = serve(index_dir)
        paths = requests_for(lang, speakers, total, seed=3)
        client(port, paths[:20], [], [])  # warm-up, untimed: imports, length tables
        writer_proc = subprocess.Popen([sys.executable, __file__, "--writer", str(index_dir), "--hours", str(hours),
                                        "--commit-pause", str(args.commit_pause)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=common.ROOT)
        if writer_proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"writer failed: {writer_proc.stderr.read()[-2000:]}")
        rows: list = []
        errors: list = []
        share = [paths[i::clients] for i in range(clients)]
        threads = [threading.Thread(target=client, args=(port, part, rows, errors)) for part in share]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        (tmp / STOP_FILE).touch()
        out, err = writer_proc.communicate(timeout=60)
        if writer_proc.returncode != 0:
            raise SystemExit(f"writer failed: {err[-2000:]}")
        commits = json.loads(out.strip().splitlines()[-1])["commits"] - 1  # the first landed before the clients
        latencies = [r[0] for r in rows]
        statuses: dict[str, int] = {}
        for _, status, _ in rows:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        by_kind: dict[str, list[float]] = {}
        for seconds, _, path in rows:
            kind = "page" if path.startswith("/search") else "phrase" if "%22" in path else \
                "speaker" if "speaker=" in path else "single"
            by_kind.setdefault(kind, []).append(seconds)
        ms = lambda v: round(v * 1000, 2)  # noqa: E731
        data = {
            "quick": args.quick,
            "hours": hours,
            "build_index_s": round(build_s, 1),
            "clients": clients,
            "requests": total,
            "answered": len(rows),
            "wall_s": round(wall, 2),
            "requests_per_s": round(len(rows) / wall, 1),
            "p50_ms": ms(common.percentile(latencies, 50)),
            "p99_ms": ms(common.percentile(latencies, 99)),
            "max_ms": ms(max(latencies)),
            "by_kind_p99_ms": {k: ms(common.percentile(v, 99)) for k, v in sorted(by_kind.items())},
            "statuses": statuses,
            "errors": total - len(rows) + sum(n for s, n in statuses.items() if s != "200"),
            "error_samples": errors[:5],
            "commits_during_run": commits,
            "targets": TARGETS,
        }
        print(common.write_result("web", data, args.out_dir))
    finally:
        if writer_proc is not None and writer_proc.poll() is None:
            writer_proc.kill()
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
