"""Index and search at archive scale: majlis.search (Whoosh) side by side with SQLite FTS5.

One archive grows through the sizes (e.g. 10 -> 100 -> 1000 hours); at each size both indexes are reopened
fresh and the same query set runs in-process (one untimed warm-up pass, then timed passes). At the largest
size `majlis search` is timed as a fresh process (cold start). Then, apart: the first run's schema against
today's on 10 h, and today's code on the first run's corpus (seed vocabulary only, `--seed-vocab-hours`).
The first run's own numbers are carried over from the results file being replaced. Writes
bench/results/search.json and search_latency.png.

    python bench/search.py            # full: 10, 100, 1000 hours
    python bench/search.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import corpus  # noqa: E402
from fts import Fts  # noqa: E402

TARGETS = {"p50_ms": 10.0, "p99_ms": 50.0, "cli_cold_s": 0.5}


ALL_KINDS = ("single", "phrase", "speaker")  # what the targets are for; "common" is reported beside them


def make_queries(lang: corpus.Language, speakers: list[str], n: int, frequent: list[str] = (),
                 seed: int = 7) -> dict[str, list]:
    """Single words: half the topic's content words (names, subjects), half everyday English content words
    of frequency rank 1,000-20,000 (what people look up). Phrases: real 2-3 word sequences of the topic.
    Speaker: a single-word query filtered to one speaker. Common: the archive's most frequent content words,
    the worst case, timed and reported on their own."""
    rng = random.Random(seed)
    topic = lang.content_words()
    everyday = lang.background_content_words(1_000, 20_000)
    if everyday:
        singles = rng.sample(topic, min(n // 2, len(topic)))
        singles += rng.sample(everyday, n - len(singles))
    else:  # seed vocabulary only: the query set of the first benchmark run
        singles = rng.sample(topic, min(n, len(topic)))
    phrases = lang.phrases(rng, max(1, n // 2))
    pool = singles if everyday else topic
    by_speaker = [(rng.choice(pool), rng.choice(speakers)) for _ in range(max(1, n // 2))]
    out = {"single": [(q, ()) for q in singles], "phrase": [(f'"{p}"', ()) for p in phrases],
           "speaker": [(q, (s,)) for q, s in by_speaker]}
    if frequent:
        out["common"] = [(q, ()) for q in frequent]
    return out


def common_words(lang: corpus.Language, n: int, hours: float = 10.0) -> list[str]:
    """The most frequent content words of (a sample of) the archive itself."""
    from collections import Counter

    counts: Counter = Counter()
    for spec in corpus.episodes(lang, hours, seed=1):
        for seg in spec["segments"]:
            counts.update(w for w in seg[3] if len(w) >= 4 and w.lower() not in corpus.STOPWORDS)
    return [w for w, _ in counts.most_common(n)]


def time_queries(search, queries: dict[str, list], passes: int) -> dict:
    for kind in queries.values():  # warm-up: first touch of every posting list
        for q, sp in kind:
            search(q, sp)
    load_before = os.getloadavg()[0]
    out, every, hits = {}, [], {}
    for kind, qs in queries.items():
        ms, n_hits = [], 0
        for _ in range(passes):
            for q, sp in qs:
                t = time.perf_counter()
                res = search(q, sp)
                ms.append((time.perf_counter() - t) * 1000)
                n_hits += len(res)
        if kind in ALL_KINDS:
            every.extend(ms)
        out[kind] = _lat(ms)
        hits[kind] = round(n_hits / len(ms), 2)
    out["all"] = _lat(every)
    out["mean_hits"] = hits
    # Other work on the machine while timing (2 cores: above 2, the timings are inflated by contention).
    out["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return out


def _lat(ms: list[float]) -> dict:
    return {"p50_ms": round(common.percentile(ms, 50), 3), "p99_ms": round(common.percentile(ms, 99), 3),
            "mean_ms": round(sum(ms) / len(ms), 3), "max_ms": round(max(ms), 3), "n": len(ms)}


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def profile_text(prof: cProfile.Profile, top: int = 25) -> str:
    s = io.StringIO()
    pstats.Stats(prof, stream=s).strip_dirs().sort_stats("cumulative").print_stats(top)
    lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    return "\n".join(lines[max(0, start - 2):])


def cold_worker(index_dir: Path, query: str) -> dict:
    """In a fresh process, as `majlis search` does it: where the cold-start time goes."""
    t0 = time.perf_counter()
    import majlis.cli  # noqa: F401  (the CLI's own import cost: click, rich, the command modules)
    from majlis.search import Index

    t1 = time.perf_counter()
    prof = cProfile.Profile()
    prof.enable()
    index = Index(index_dir)
    t2 = time.perf_counter()
    hits = index.search(query, limit=20)
    t3 = time.perf_counter()
    prof.disable()
    return {"import_s": round(t1 - t0, 3), "open_s": round(t2 - t1, 3), "first_search_s": round(t3 - t2, 3),
            "hits": len(hits), "profile": profile_text(prof, 20)}


def cli_cold(index_dir: Path, word: str, runs: int) -> dict:
    exe = Path(sys.executable).parent / "majlis"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "majlis"]
    walls, codes = [], []
    for _ in range(runs):
        r = common.run_measured([*argv, "search", word, "--index", str(index_dir)], parse_json=False,
                                ok_codes=(0, 1))
        walls.append(r["process_wall_s"])
        codes.append(r["returncode"])
    if 0 not in codes:
        raise RuntimeError(f"majlis search {word!r} found nothing (exit codes {codes})")
    bare = [common.run_measured([sys.executable, "-c", "pass"], parse_json=False)["process_wall_s"]
            for _ in range(runs)]
    parts = [common.run_measured([sys.executable, __file__, "--cold-worker", str(index_dir), word])
             for _ in range(runs)]
    breakdown = {k: common.summary([p[k] for p in parts]) for k in ("import_s", "open_s", "first_search_s")}
    return {"command": f"majlis search {word} --index INDEX", "wall_s": common.summary(walls),
            "python_startup_s": common.summary(bare), "runs": runs, "breakdown": breakdown,
            "profile": parts[len(parts) // 2]["profile"]}


def _cold(idx_dir: Path, queries: dict, runs: int) -> dict:
    try:
        return cli_cold(idx_dir, queries["single"][0][0], runs)
    except RuntimeError as e:  # `majlis search` missing or broken: say so in the results
        return {"error": str(e).splitlines()[0][:300] + " | " + str(e).strip().splitlines()[-1][:200]}


def plot(sizes: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [s["hours"] for s in sizes]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for engine, color in (("majlis", "tab:blue"), ("fts5", "tab:orange")):
        if engine not in sizes[0]:
            continue
        for stat, style in (("p50_ms", "-o"), ("p99_ms", "--s")):
            ax.plot(hours, [s[engine]["all"][stat] for s in sizes], style, color=color,
                    label=f"{'majlis (Whoosh)' if engine == 'majlis' else 'SQLite FTS5'} {stat[:3]}")
    ax.axhline(TARGETS["p50_ms"], color="gray", lw=0.8, ls=":")
    ax.axhline(TARGETS["p99_ms"], color="gray", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("archive size (hours of audio)")
    ax.set_ylabel("query latency, in-process (ms)")
    ax.set_title("Search latency against index size (all query kinds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def schema_experiment(lang: corpus.Language, hours: float, work: Path) -> dict:
    """The same batch into a fresh index with the first run's schema (segment start/end NUMERIC, text stored)
    and with today's (both plain STORED, text not stored): what the schema change bought."""
    import majlis.search.index as mi
    from whoosh.fields import NUMERIC, TEXT

    batch = [corpus.to_transcript(s) for s in corpus.episodes(lang, hours, seed=2)]
    out = {"hours": hours, "segments": sum(len(t.segments) for t in batch)}
    now = {name: mi.SCHEMA[name] for name in ("start", "end", "text")}
    before = {"start": NUMERIC(float, stored=True), "end": NUMERIC(float, stored=True),
              "text": TEXT(analyzer=mi.ANALYZER, phrase=True, stored=True, multitoken_query="phrase")}

    def use(fields: dict) -> None:
        for name, field in fields.items():
            mi.SCHEMA.remove(name)
            mi.SCHEMA.add(name, field)

    try:
        for label, fields in (("before", before), ("now", now)):
            use(fields)
            t = time.perf_counter()
            mi.Index(work / f"exp-{label}", create=True).add(batch)
            out[f"{label}_s"] = round(time.perf_counter() - t, 3)
            out[f"{label}_mb"] = round(dir_bytes(work / f"exp-{label}") / 2**20, 2)
    finally:
        use(now)
    out["speedup"] = round(out["before_s"] / out["now_s"], 2)
    return out


def grow(lang: corpus.Language, sizes: list[float], args, work: Path, n_queries: int, passes: int,
         batch_hours: float, frequent: list[str], profile: dict | None) -> dict:
    """Index one archive through the sizes, timing both engines' queries at each; the last reader stays open."""
    from majlis.search import Index

    idx_dir, fts_path = work / "index", work / "fts.sqlite"
    index = Index(idx_dir, create=True)
    fts = None if args.no_fts else Fts(fts_path)
    done = {"hours": 0.0, "episodes": 0, "segments": 0, "words": 0}
    spent = {"majlis": 0.0, "fts5": 0.0, "generate": 0.0}
    speakers: set[str] = set()
    results, stopped_early = [], None
    for size in sizes:
        while done["hours"] < size - 1e-6 and stopped_early is None:
            t = time.perf_counter()
            specs = list(corpus.episodes(lang, min(batch_hours, size - done["hours"]), seed=1,
                                         start_index=done["episodes"]))
            batch = [corpus.to_transcript(s) for s in specs]
            spent["generate"] += time.perf_counter() - t
            if profile is not None and "index_add" not in profile:  # where indexing time goes
                prof = cProfile.Profile()
                t = time.perf_counter()
                prof.runcall(index.add, batch)
                spent["majlis"] += time.perf_counter() - t
                profile["index_add"] = profile_text(prof)
                profile["index_add_note"] = f"first Index.add call, {len(batch)} episodes, under cProfile"
            else:
                t = time.perf_counter()
                index.add(batch)
                spent["majlis"] += time.perf_counter() - t
            if fts:
                t = time.perf_counter()
                fts.add(batch)
                spent["fts5"] += time.perf_counter() - t
            c = corpus.counts(specs)
            for k in done:
                done[k] += c[k]
            speakers.update(s for spec in specs for s in spec["speakers"])
            print(f"indexed {done['hours']:.1f} h, {done['segments']} segments, "
                  f"majlis {spent['majlis']:.0f} s, fts5 {spent['fts5']:.0f} s", file=sys.stderr, flush=True)
            if spent["majlis"] > args.max_index_minutes * 60:
                stopped_early = size
        queries = make_queries(lang, sorted(speakers), n_queries, frequent)
        reader = Index(idx_dir)
        row = {"hours": round(done["hours"], 2), "segments": done["segments"], "words": done["words"],
               "majlis": {"index_mb": round(dir_bytes(idx_dir) / 2**20, 1),
                          "whoosh_segments": len(reader._ix._segments()),
                          **time_queries(lambda q, sp: reader.search(q, speakers=sp, limit=20), queries, passes)}}
        if fts:
            row["fts5"] = {"index_mb": round(fts.size_bytes() / 2**20, 1),
                           **time_queries(lambda q, sp: fts.search(q, sp, 20), queries, passes)}
            row["matching_segments"] = {
                kind: common.summary([fts.count(q, sp) or 0 for q, sp in qs] or [0]) for kind, qs in queries.items()}
        results.append(row)
        print(f"{row['hours']} h: majlis p50 {row['majlis']['all']['p50_ms']} ms "
              f"p99 {row['majlis']['all']['p99_ms']} ms", file=sys.stderr, flush=True)
        if stopped_early is not None:
            break
    if fts:
        fts.close()

    def rate(engine: str) -> dict:
        s = spent[engine]
        return {"seconds": round(s, 2), "segments_per_s": round(done["segments"] / s, 1),
                "words_per_s": round(done["words"] / s, 1), "audio_hours_per_s": round(done["hours"] / s, 4),
                "extrapolated_1000h_s": round(s * 1000 / done["hours"], 1)}

    return {"corpus": {k: round(v, 2) for k, v in done.items()}, "stopped_early_at_hours": stopped_early,
            "indexing": {"majlis": rate("majlis"), **({"fts5": rate("fts5")} if fts else {}),
                         "generate_s": round(spent["generate"], 2)},
            "sizes": results, "queries": queries, "reader": reader, "idx_dir": idx_dir}


def verdict(lat: dict, cold: dict, hours: float) -> dict:
    return {"p50_ok": lat["all"]["p50_ms"] <= TARGETS["p50_ms"], "p99_ok": lat["all"]["p99_ms"] <= TARGETS["p99_ms"],
            "cli_cold_ok": cold["wall_s"]["median"] <= TARGETS["cli_cold_s"] if "wall_s" in cold else None,
            "at_hours": hours}


def first_run(out_dir: Path) -> dict | None:
    """The headline numbers of the first full run (seed-only vocabulary, first schema), carried from the
    results file being replaced so the report can set them beside today's."""
    path = out_dir / "search.json"
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if old.get("first_run") or old.get("quick"):
        return old.get("first_run")
    if "vocab_types" not in old.get("params", {}):  # not the first run's format
        return None
    keep = ("single", "phrase", "speaker", "all")
    return {"created": old.get("created"), "vocab_types": old["params"]["vocab_types"],
            "indexing_segments_per_s": {e: old["indexing"][e]["segments_per_s"] for e in old["indexing"]
                                        if isinstance(old["indexing"][e], dict)},
            "sizes": [{"hours": row["hours"], "segments": row["segments"],
                       "index_mb": {e: row[e]["index_mb"] for e in ("majlis", "fts5") if e in row},
                       **{e: {k: {s: row[e][k][s] for s in ("p50_ms", "p99_ms")} for k in keep}
                          for e in ("majlis", "fts5") if e in row}} for row in old["sizes"]],
            "cli_cold_s": old.get("cli_cold", {}).get("wall_s", {}).get("median")}


def previous_run(out_dir: Path) -> dict | None:
    """Latency by query kind in the results being replaced (same corpus and queries, the code before), so
    the report can set the code's before and after side by side."""
    try:
        old = json.loads((out_dir / "search.json").read_text())
    except (OSError, ValueError):
        return None
    if old.get("quick") or "topic_vocab_types" not in old.get("params", {}):
        return None
    kinds = (*ALL_KINDS, "common", "all")

    def pick(lat: dict) -> dict:
        return {k: {s: lat[k][s] for s in ("p50_ms", "p99_ms")} for k in kinds if k in lat}

    def cost(lat: dict) -> dict:  # what an index change costs: disk, and the time to merge segments
        return {k: lat[k] for k in ("index_mb", "optimize_s") if k in lat}

    return {"created": old.get("created"), "code": old.get("code"),
            "segments_per_s": old.get("indexing", {}).get("majlis", {}).get("segments_per_s"),
            "sizes": [{"hours": r["hours"], "majlis": {**pick(r["majlis"]), **cost(r["majlis"])},
                       **({"majlis_optimized": {**pick(r["majlis_optimized"]), **cost(r["majlis_optimized"])}}
                          if "majlis_optimized" in r else {}),
                       # FTS5's code never changes: its before and after is the machine's share of a difference
                       **({"fts5": pick(r["fts5"])} if "fts5" in r else {})}
                      for r in old["sizes"]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small archive, few queries (< 1 min)")
    ap.add_argument("--sizes", default=None, help="comma-separated archive sizes in hours (default 10,100,1000)")
    ap.add_argument("--queries", type=int, default=None, help="single-word queries (phrases, speaker: half)")
    ap.add_argument("--passes", type=int, default=None, help="timed passes over the query set")
    ap.add_argument("--batch-hours", type=float, default=None, help="hours of transcripts per Index.add call")
    ap.add_argument("--max-index-minutes", type=float, default=90.0,
                    help="stop growing the archive when majlis indexing has taken this long")
    ap.add_argument("--seed-vocab-hours", type=float, default=None,
                    help="also run the first benchmark's corpus (seed vocabulary only) at this size; 0: skip "
                         "(default 100, --quick 0)")
    ap.add_argument("--no-fts", action="store_true", help="skip the SQLite FTS5 baseline")
    ap.add_argument("--work-dir", type=Path, default=None, help="where the indexes go (default: a temp dir)")
    ap.add_argument("--keep-index", action="store_true", help="leave the indexes in the work dir afterwards")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    ap.add_argument("--cold-worker", nargs=2, metavar=("INDEX", "QUERY"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    sys.path.insert(0, str(common.ROOT / "src"))
    if args.cold_worker:
        common.emit(cold_worker(Path(args.cold_worker[0]), args.cold_worker[1]))
        return 0

    from majlis.search import Index

    sizes = [float(x) for x in (args.sizes or ("1,3" if args.quick else "10,100,1000")).split(",")]
    n_queries = args.queries or (12 if args.quick else 100)
    passes = args.passes or (1 if args.quick else 2)
    batch_hours = args.batch_hours or (1.0 if args.quick else 25.0)
    seed_hours = args.seed_vocab_hours if args.seed_vocab_hours is not None else (0.0 if args.quick else 100.0)
    cli_runs = 2 if args.quick else 5

    lang = corpus.archive_language()
    common_list = common_words(lang, max(1, n_queries // 5))
    work = Path(tempfile.mkdtemp(prefix="majlis-bench-search-", dir=args.work_dir))
    try:
        profile: dict = {}
        run = grow(lang, sizes, args, work / "archive", n_queries, passes, batch_hours, common_list, profile)
        reader, queries, idx_dir = run.pop("reader"), run.pop("queries"), run.pop("idx_dir")
        cold_loaded = _cold(idx_dir, queries, cli_runs)
        # Then as after `majlis index --optimize`: one whoosh segment instead of what the commits left.
        reader.close()
        t = time.perf_counter()
        Index(idx_dir).optimize()
        optimize_s = time.perf_counter() - t
        reader = Index(idx_dir)
        run["sizes"][-1]["majlis_optimized"] = {
            "optimize_s": round(optimize_s, 1), "index_mb": round(dir_bytes(idx_dir) / 2**20, 1),
            "whoosh_segments": len(reader._ix._segments()),
            **time_queries(lambda q, sp: reader.search(q, speakers=sp, limit=20), queries, passes)}
        for kind in ("single", "phrase", "common"):
            if kind not in queries:
                continue
            prof = cProfile.Profile()
            prof.runcall(lambda: [reader.search(q, speakers=sp, limit=20) for q, sp in queries[kind]])
            profile[f"search_{kind}"] = profile_text(prof)
            profile[f"search_{kind}_note"] = (f"{len(queries[kind])} {kind} queries at {run['corpus']['hours']:.0f} h, "
                                              f"after optimize")
        reader.close()
        cold = _cold(idx_dir, queries, cli_runs)
        if not args.keep_index:
            shutil.rmtree(work / "archive", ignore_errors=True)

        experiment = None if args.quick else schema_experiment(lang, 10.0, work)
        seed_run = None
        if seed_hours > 0:  # same code, the first run's corpus and queries: what the corpus change changed
            seed_lang = corpus.Language(corpus.source_texts())
            seed_run = grow(seed_lang, [seed_hours], args, work / "seed-vocab", n_queries, passes, batch_hours,
                            [], None)
            seed_run["reader"].close()
            seed_run["vocab_types"] = len(seed_lang.vocab)
            for k in ("reader", "queries", "idx_dir"):
                seed_run.pop(k)

        largest = run["sizes"][-1]
        data = {
            "quick": args.quick,
            "params": {"sizes_hours": sizes, "queries_single": n_queries, "passes": passes,
                       "batch_hours": batch_hours, "limit": 20, "topic_vocab_types": len(lang.vocab),
                       "background_vocab_types": len(lang.background), "jump": lang.jump, "topic": lang.topic,
                       "max_index_minutes": args.max_index_minutes,
                       "query_counts": {k: len(v) for k, v in queries.items()},
                       "common_words": common_list},
            **run,
            "cli_cold": cold_loaded,
            "cli_cold_optimized": cold,
            "targets": TARGETS,
            "verdict": verdict(largest["majlis"], cold_loaded, largest["hours"]),
            "verdict_optimized": verdict(largest["majlis_optimized"], cold, largest["hours"]),
            "profile": profile,
            "experiment_schema": experiment,
            "seed_vocab": seed_run,
            "first_run": None if args.quick else first_run(args.out_dir),
            "previous_run": None if args.quick else previous_run(args.out_dir),
        }
        out = common.write_result("search", data, args.out_dir)
        plot(run["sizes"], args.out_dir / "search_latency.png")
        print(out)
    finally:
        if args.keep_index:
            print(f"indexes kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
