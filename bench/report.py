"""Regenerate the measured sections of BENCHMARKS.md from bench/results/*.json.

Numbers in BENCHMARKS.md come only from here: each generated block sits between
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers; the prose around them is kept as written.

    python bench/report.py                 # rewrite BENCHMARKS.md in place
    python bench/report.py --check         # exit 1 if BENCHMARKS.md is out of date with the results
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

MD = common.ROOT / "BENCHMARKS.md"


def f(x, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def mm(s: dict, digits: int = 2, unit: str = "") -> str:
    """median (min–max) from a common.summary dict."""
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"{f(s['median'], digits)}{unit}"
    return f"{f(s['median'], digits)}{unit} ({f(s['min'], digits)}–{f(s['max'], digits)})"


def ok(flag) -> str:
    return "–" if flag is None else ("**met**" if flag else "**MISSED**")


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def details(title: str, body: str) -> str:
    return f"<details><summary>{title}</summary>\n\n```\n{body.rstrip()}\n```\n\n</details>"


def machine(results: dict) -> str:
    any_result = next(iter(results.values()), None)
    if any_result is None:
        return "_no results yet_"
    m = any_result["machine"]
    rows = [["CPU", f"{m['cpus']} × {m['cpu_model']} (shared with other work; measurements run at `nice -n 19`)"],
            ["memory", f"{m['mem_gib']} GiB"],
            ["GPU", m["gpu"] or ("none (§2's GPU table was taken on a lent machine, described there)"
                                 if "whisper_path_cuda" in results else "none (all numbers are CPU-only)")],
            ["Python", m["python"]], ["OS", m["platform"]]]
    def when(v: dict) -> str:
        probe = v["machine"].get("speed_probe_s")
        return v["created"] + (f" (speed probe {probe * 1000:.0f} ms)" if probe else "")

    dates = ", ".join(f"{k}: {when(v)}" for k, v in sorted(results.items()))
    note = ("" if not any(v["machine"].get("speed_probe_s") for v in results.values()) else
            " The speed probe (bench/common.py) times a fixed piece of Python at the end of each run: lower is "
            "a faster machine. Machines of this same description have differed by 2 to 3 times between runs.")
    return table(["", ""], rows) + f"\n\nResults taken: {dates}.{note}"


def pipeline(d: dict) -> str:
    s, t, v = d["summary"], d["targets"], d["verdict"]
    runs = d["runs"]
    rows = [
        ["majlis `transcribe_file` (engines loaded)", mm(s["pipeline_wall_s"], 1, " s"), "", ""],
        ["ASR alone (`get_asr('sphinx').transcribe`)", mm(s["asr_alone_s"], 1, " s"), "", ""],
        ["diarizer alone (`get_diarizer('builtin').diarize`)", mm(s["diarize_alone_s"], 1, " s"), "", ""],
        ["overhead ratio = majlis / (ASR + diarizer)", mm(s["overhead_ratio"], 3),
         f"≤ {t['overhead_ratio']}", ok(v["overhead_ok"])],
        ["real-time factor (`transcribe_file` / audio)", mm(s["rtf"], 3), f"≤ {t['rtf']}", ok(v["rtf_ok"])],
        ["real-time factor of the whole process (imports, engine load)", mm(s["process_rtf"], 3), "", ""],
        *([["CPU time: pipeline / ASR alone / diarizer alone",
            f"{mm(s['pipeline_cpu_s'], 1, ' s')} / {mm(s['asr_alone_cpu_s'], 1, ' s')} / "
            f"{mm(s['diarize_alone_cpu_s'], 1, ' s')}", "", ""],
           ["CPU overhead ratio = pipeline CPU / (ASR CPU + diarizer CPU)", mm(s["cpu_overhead_ratio"], 3), "", ""],
           ["CPU-seconds per audio second", mm(s["cpu_rtf"], 3), "", ""]] if "pipeline_cpu_s" in s else
          [["CPU time: ASR alone / diarizer alone",
            f"{mm(s['asr_alone_cpu_s'], 1, ' s')} / {mm(s['diarize_alone_cpu_s'], 1, ' s')}", "", ""]]),
        ["peak RSS, pipeline process tree", mm(s["pipeline_peak_rss_mb"], 0, " MB"),
         f"≤ {t['peak_rss_mb']} MB", ok(v["peak_rss_ok"])],
        ["peak RSS, ASR alone", mm(s["asr_peak_rss_mb"], 0, " MB"), "", ""],
        ["peak RSS, diarizer alone", mm(s["diarize_peak_rss_mb"], 0, " MB"), "", ""],
    ]
    loads = [x for r in d["rounds"] for k in ("pipeline", "asr", "diarize") for x in r[k].get("loadavg_1m", ())]
    busy = loads and max(loads) > d["machine"]["cpus"]  # more than the measured processes' own load
    load_note = (f" The machine's 1-minute load average during these runs was {f(min(loads), 1)}–{f(max(loads), 1)} "
                 f"on {d['machine']['cpus']} cores" + (" (other work running), so wall times carry contention; CPU "
                 "times do not." if busy else ", the measured processes' own load: nothing else ran beside them.")
                 if loads else "")
    out = [f"Audio: `{d['audio']}`, {f(d['duration_s'] / 60, 1)} min. Medians over {runs} round"
           f"{'s' * (runs != 1)} (min–max in brackets); each measurement is a fresh process.{load_note}",
           "", table(["measure", "result", "target", ""], rows)]
    if d.get("cpu_note"):
        out += ["", d["cpu_note"]]
    med = sorted(d["rounds"], key=lambda r: r["pipeline"]["wall_s"])[len(d["rounds"]) // 2]["pipeline"]
    stage_rows = []
    for name, (a, b) in sorted(med["spans"].items(), key=lambda kv: kv[1][0]):
        stage_rows.append([f"`{name}`", f(a, 1), f(b, 1), f(b - a, 1)])
    out += ["", "Stage timeline of the median round (seconds from the start of `transcribe_file`; ASR and "
            "diarization run side by side, sphinx in a child process and the diarizer in the parent, so their "
            "spans overlap):", "",
            table(["stage", "start", "end", "took"], stage_rows)]
    hook_rows = [[f"`{k}`", f(h["first_s"], 1), f(h["last_s"], 1), f(h["calls"])] for k, h in
                 sorted(med["hooks"].items(), key=lambda kv: kv[1]["first_s"])]
    if hook_rows:
        out += ["", "Progress-hook calls in the same round:", "",
                table(["hook stage", "first call (s)", "last call (s)", "calls"], hook_rows)]
    long = d.get("long")
    if long:
        p, dec, sdec, dia = long["pipeline"], long["decode"], long["short_decode"], long.get("diarize")

        def status(r: dict) -> str:
            when = f"; measured {r['measured']}, in this run's code" if r.get("measured") else ""
            return (f"stopped after {f(r['process_wall_s'] / 60, 1)} min (time limit "
                    f"{f(r.get('timeout_s', long['timeout_s']) / 60, 0)} min): the peak so far{when}"
                    if r["timed_out"] else f"finished in {f(r['process_wall_s'] / 60, 1)} min{when}")

        before = d.get("long_before")
        short_pipe = long.get("short_pipeline")
        short_peak = (short_pipe or max((r["pipeline"] for r in d["rounds"]), key=lambda r: r["peak_tree_rss_mb"]))

        def mb(r: dict | None) -> str:
            return f"{f(r['peak_tree_rss_mb'], 0)} MB" if r else "–"

        rows = [["decode only", mb(sdec), f"{mb(dec)}"],
                *([["diarizer alone (decode + diarize)",
                    f"{f(max(r['diarize']['peak_tree_rss_mb'] for r in d['rounds']), 0)} MB (the rounds above)",
                    f"{mb(dia)} ({status(dia)})"]] if dia else []),
                ["full pipeline", mb(short_peak), f"{mb(p)} ({status(p)})"]]
        if before:
            for row, key in zip(rows, ("decode", "diarize", "pipeline") if dia else ("decode", "pipeline")):
                row.append(mb(before.get(key)))
        reused = (f" **Measured in an earlier run ({long['reused_from']}), not in this one"
                  f"{', except where a row says so' if p.get('measured') else ''}.**"
                  if long.get("reused_from") else "")
        out += ["", f"Memory on a long file: `{long['audio']}` ({f(long['duration_s'] / 3600, 2)} h, the 39-min "
                f"panel concatenated with ffmpeg), against the 39-min file.{reused}", "",
                table(["process", f"{f(d['duration_s'] / 60, 0)} min", f"{f(long['duration_s'] / 3600, 1)} h",
                       *([f"{f(long['duration_s'] / 3600, 1)} h, before ({before.get('measured') or before.get('reused_from') or 'earlier'})"]
                         if before else [])], rows),
                "", f"Peak on the long file / peak on the 39-min file: **{f(v['long_vs_short_rss'], 3)}×** "
                f"(target flat, which we read as ≤ {t.get('flat_rss_ratio', 1.15)}×: "
                f"{ok(v['long_vs_short_rss'] <= t.get('flat_rss_ratio', 1.15))}; "
                f"long-file peak ≤ {t['peak_rss_mb']} MB: {ok(v['long_peak_rss_ok'])}).",
                "", "![RSS over time](bench/results/pipeline_rss.png)"]
    e = d.get("earlier")
    if e:
        es = e["summary"]
        spans = sorted(e["rounds"], key=lambda r: r["pipeline"]["wall_s"])[len(e["rounds"]) // 2]["pipeline"]["spans"]
        rows = [["majlis `transcribe_file`", mm(es["pipeline_wall_s"], 1, " s")],
                ["ASR alone / diarizer alone", f"{mm(es['asr_alone_s'], 1, ' s')} / {mm(es['diarize_alone_s'], 1, ' s')}"],
                ["overhead ratio", f"{mm(es['overhead_ratio'], 3)} {ok(es['overhead_ratio']['median'] <= t['overhead_ratio'])}"],
                ["CPU overhead ratio", mm(es["cpu_overhead_ratio"], 3)],
                ["`diarize_stage` beside the ASR (median round)",
                 f"{f(spans['diarize_stage'][1] - spans['diarize_stage'][0], 1)} s"]]
        out += ["", f"Before the fix: the run of {e['created']} (`bench/results/earlier/{EARLIER_PIPELINE}`), "
                "ASR and diarization in two threads of one process, medians over "
                f"{e['runs']} rounds:", "", table(["measure", "result"], rows)]
        if e.get("profile"):
            out += ["", details("cProfile of `diarize_stage` in that run, beside the ASR thread",
                                e["profile"]["stages"]["diarize_stage"])]
    if d.get("profile"):
        out += ["", f"Profile ({d['profile']['note']}):"]
        for stage, text in d["profile"]["stages"].items():
            out += ["", details(f"cProfile of `{stage}`", text)]
    return "\n".join(out)


def whisper_path(d: dict) -> str:
    s, m, w = d["summary"], d["model"], d["whole_file"]
    rows = [
        ["majlis `transcribe_file`, whisper ASR, no diarizer", mm(s["majlis_wall_s"], 2, " s")],
        ["… of which inside whisper's `transcribe`", mm(s["inside_whisper_s"], 2, " s")],
        ["the same whisper calls replayed alone (same audio chunks, arguments, seeds)", mm(s["whisper_alone_s"], 2, " s")],
        ["overhead: majlis − whisper alone", mm(s["overhead_s"], 2, " s")],
        ["overhead ratio: majlis / whisper alone", mm(s["overhead_ratio"], 3)],
        ["majlis time outside whisper, same process (decode, chunking, alignment)", mm(s["in_process_overhead_s"], 2, " s")],
        ["whisper calls per file (majlis cuts the audio at pauses)", mm(s["whisper_calls"], 0)],
        ["tokens decoded, majlis = replay", f"{mm(s['tokens'], 0)} ({'identical' if d['same_work'] else 'DIFFERENT'})"],
        ["plain `whisper.transcribe` over the whole clip (once; its own windows, so other work)",
         f"{f(w['wall_s'], 2)} s, {f(w['tokens'])} tokens"],
        ["encoder, one 30-s window", mm(s["encoder_30s_window_s"], 3, " s")],
        ["decoder, per greedy step (key/value cache)", mm(s["decode_ms_per_step"], 1, " ms")],
        ["real-time factor of majlis here (random weights decode to the token limit)", mm(s["rtf"], 2)],
        ["peak RSS, majlis / replay", f"{mm(s['majlis_peak_rss_mb'], 0, ' MB')} / {mm(s['whisper_peak_rss_mb'], 0, ' MB')}"],
    ]
    kw = ", ".join(f"{k}={v!r}" for k, v in d["whisper_kwargs"].items())
    return "\n".join([
        f"Model: whisper `{m['dims_name']}` dimensions ({f(m['parameters'])} parameters), {m['weights']} weights, "
        f"on {m['device']} ({d['gpu']}); decoding options: {', '.join(f'{k}={v}' for k, v in d['decode_options'].items()) if isinstance(d['decode_options'], dict) else d['decode_options']}. Audio: `{d['audio']}`. "
        f"Medians over {d['runs']} round{'s' * (d['runs'] != 1)}, each side a fresh process.", "",
        table(["measure", "result"], rows), "",
        f"Arguments majlis passes to whisper (replayed as they are): `{kw}`."])


def whisper_path_gpu(d: dict) -> str:
    """One column per model shape: the same measurement as on the CPU, on the lent GPU machine."""
    models = [d, *d.get("other_models", [])]
    measures = [
        ("majlis `transcribe_file`, whisper ASR, no diarizer", lambda s: mm(s["majlis_wall_s"], 2, " s")),
        ("… of which inside whisper's `transcribe`", lambda s: mm(s["inside_whisper_s"], 2, " s")),
        ("the same calls replayed alone", lambda s: mm(s["whisper_alone_s"], 2, " s")),
        ("overhead ratio: majlis / whisper alone", lambda s: mm(s["overhead_ratio"], 3)),
        ("majlis time outside whisper, same process", lambda s: mm(s["in_process_overhead_s"], 2, " s")),
        ("tokens decoded (majlis = replay)", lambda s: mm(s["tokens"], 0)),
        ("encoder, one 30-s window", lambda s: mm(s["encoder_30s_window_s"], 4, " s")),
        ("decoder, per greedy step", lambda s: mm(s["decode_ms_per_step"], 1, " ms")),
        ("real-time factor of majlis", lambda s: mm(s["rtf"], 3)),
        ("peak GPU memory, majlis / replay",
         lambda s: f"{mm(s['majlis_gpu_peak_mb'], 0, ' MB')} / {mm(s['whisper_gpu_peak_mb'], 0, ' MB')}"),
        ("peak host RSS, majlis / replay",
         lambda s: f"{mm(s['majlis_peak_rss_mb'], 0, ' MB')} / {mm(s['whisper_peak_rss_mb'], 0, ' MB')}"),
    ]
    rows = [[label, *(fn(m["summary"]) for m in models)] for label, fn in measures]
    rows.append(["same tokens on both sides, every round", *(f(m["same_work"]) for m in models)])
    header = ["measure", *(f"`{m['model']['dims_name']}` ({f(m['model']['parameters'] / 1e6, 0)} M parameters)"
                           for m in models)]
    mach = d["machine"]
    return "\n".join([
        f"Machine: {d['gpu']}, {mach['cpus']} CPU cores, Python {mach['python']}; measured {d['created']}. "
        f"Random (seed 0) weights, fp16 (as majlis and whisper use on a GPU); decoding options: "
        f"{', '.join(f'{k}={v}' for k, v in d['decode_options'].items())}. Audio: `{d['audio']}`. "
        f"Medians over {d['runs']} rounds, each side a fresh process.", "",
        table(header, rows)])


KIND_LABELS = (("single", "single word"), ("phrase", "phrase"), ("speaker", "word + speaker filter"),
               ("all", "all three kinds above"), ("common", "most common words (worst case; not in “all”)"))


def _corpus_line(d: dict) -> str:
    c, p = d["corpus"], d["params"]
    if "vocab_types" in p:  # the first run's format: seed vocabulary only
        vocab = f"vocabulary of {p['vocab_types']} word types from the seed article and the demo script"
    else:
        vocab = (f"words from a topic chain over the seed article and the demo script ({p['topic_vocab_types']} word "
                 f"types) mixed into everyday English with its real frequencies (wordfreq's "
                 f"{f(p['background_vocab_types'])} most common English words); see bench/corpus.py")
    counts = p.get("query_counts", {})
    n = p["queries_single"]
    queries = (f"{counts.get('single', n)} single words (half the topic's content words, half everyday English "
               f"content words of frequency rank 1,000–20,000), {counts.get('phrase', n // 2)} phrases (real 2–3 word "
               f"sequences of the topic), {counts.get('speaker', n // 2)} single words filtered to one speaker")
    if "common" in counts:
        queries += (f"; beside them, the archive's {counts['common']} most frequent words of four letters or more "
                    f"outside a short stop list ({', '.join(p['common_words'][:8])}, ...), timed the same way but "
                    f"kept out of “all”")
    return (f"Archive: {f(c['hours'], 0)} h of synthetic transcripts ({f(int(c['episodes']))} episodes, "
            f"{f(int(c['segments']))} segments, {f(int(c['words']))} words; {vocab}). Queries: {queries}; limit 20; "
            f"{p['passes']} timed passes after one warm-up pass.")


def search(d: dict) -> str:
    c, ix, t, v = d["corpus"], d["indexing"], d["targets"], d["verdict"]
    largest = d["sizes"][-1]
    opt, vo = largest.get("majlis_optimized"), d.get("verdict_optimized")
    out = [_corpus_line(d)]
    if d.get("stopped_early_at_hours") is not None:
        out.append(f"\n**Indexing was stopped at {f(c['hours'], 0)} h** (time budget); larger sizes are extrapolated.")
    mid = [""] if opt else []  # the "after optimize" column

    def status(key: str) -> str:
        return ok(v[key]) + (f" / {ok(vo[key])}" if opt else "")

    segs = largest["majlis"].get("whoosh_segments")
    rows = [["indexing throughput", f"{f(ix['majlis']['segments_per_s'], 0)} segments/s "
             f"({f(ix['majlis']['audio_hours_per_s'] * 3600, 0)} h of audio per hour)", *mid,
             f"{f(ix['fts5']['segments_per_s'], 0)} segments/s" if "fts5" in ix else "–", "", ""],
            ["time to index the archive", f"{f(ix['majlis']['seconds'] / 60, 1)} min",
             *([f"+ {f(opt['optimize_s'] / 60, 1)} min to optimize"] if opt else []),
             f"{f(ix['fts5']['seconds'] / 60, 1)} min" if "fts5" in ix else "–", "", ""],
            ["index size", f"{f(largest['majlis']['index_mb'], 0)} MB" + (f" ({segs} whoosh segments)" if segs else ""),
             *([f"{f(opt['index_mb'], 0)} MB ({opt['whoosh_segments']} whoosh segment)"] if opt else []),
             f"{f(largest['fts5']['index_mb'], 0)} MB" if "fts5" in largest else "–", "", ""]]
    for kind, label in KIND_LABELS:
        if kind not in largest["majlis"]:
            continue
        mj = largest["majlis"][kind]
        fts = largest.get("fts5", {}).get(kind)
        for stat in ("p50_ms", "p99_ms"):
            is_all = kind == "all"

            def shown(x: float) -> str:  # to the microsecond where a tenth would round onto the target
                near = is_all and x != t[stat] and round(x, 1) == t[stat]
                return f"{f(x, 3 if near else 1)} ms"

            rows.append([f"{label}, {stat[:3]}", shown(mj[stat]),
                         *([shown(opt[kind][stat])] if opt else []), f"{f(fts[stat], 1)} ms" if fts else "–",
                         f"≤ {t[stat]:g} ms" if is_all else "",
                         status("p50_ok" if stat == "p50_ms" else "p99_ok") if is_all else ""])
    cold, cold_opt = d["cli_cold"], d.get("cli_cold_optimized")
    if "wall_s" in cold:
        rows.append(["`majlis search` cold start (fresh process)", mm(cold["wall_s"], 3, " s"),
                     *([mm(cold_opt["wall_s"], 3, " s") if "wall_s" in cold_opt else "–"] if opt else []), "–",
                     f"≤ {t['cli_cold_s']} s", status("cli_cold_ok")])
    else:
        rows.append(["`majlis search` cold start", f"not measured: {cold['error']}", *mid, "–", "", ""])
    head = ["measure", "majlis (Whoosh), as loaded", *(["majlis, after `majlis index --optimize`"] if opt else []),
            "SQLite FTS5", "target", "as loaded / optimized" if opt else ""]
    out += ["", f"At {f(largest['hours'], 0)} h, in-process, warm:", "", table(head, rows)]
    if opt and "wall_s" in cold_opt:
        cold = cold_opt  # the breakdown and profile below: the optimized index
    if "wall_s" in cold:
        out += ["", f"Cold start: `{cold['command']}`, median of {cold['runs']} runs; bare `python -c pass` takes "
                f"{mm(cold['python_startup_s'], 3, ' s')}. The index files were in the page cache (no root to drop "
                f"it), so this is process start-up, not disk."]
        if "breakdown" in cold:
            b = cold["breakdown"]
            out += ["", f"Where a cold start goes{' after optimize' if opt else ''} (same steps in a fresh process): importing the CLI and the index "
                    f"module {mm(b['import_s'], 3, ' s')}, opening the index {mm(b['open_s'], 3, ' s')}, the first "
                    f"search {mm(b['first_search_s'], 3, ' s')}.", "",
                    details("cProfile: opening the index and the first search, in a fresh process"
                            + (" (optimized index)" if opt else ""), cold["profile"])]
    if "matching_segments" in largest:
        ms = largest["matching_segments"]
        walks = [f"{label.split(' (')[0]} {f(ms[k]['median'], 0)} (max {f(ms[k]['max'], 0)})"
                 for k, label in KIND_LABELS if k in ms]
        out += ["", f"How much each query has to walk at {f(largest['hours'], 0)} h (segments matching, median and "
                f"max over the query set): {', '.join(walks)} — out of {f(largest['segments'])} segments."]
    size_rows = []
    for r in d["sizes"]:
        mj, fts = r["majlis"]["all"], r.get("fts5", {}).get("all")
        ratio = f"{f(mj['p50_ms'] / fts['p50_ms'], 1)}×" if fts else "–"
        size_rows.append([f(r["hours"], 0), f(r["segments"]), f"{f(r['majlis']['index_mb'], 0)} MB",
                          f"{f(mj['p50_ms'], 1)} / {f(mj['p99_ms'], 1)}",
                          f"{f(fts['p50_ms'], 1)} / {f(fts['p99_ms'], 1)}" if fts else "–", ratio])
    out += ["", "Latency against archive size (single words, phrases and word + speaker together; ms):", "",
            table(["hours", "segments", "majlis index", "majlis p50 / p99", "FTS5 p50 / p99", "p50 ratio"],
                  size_rows), "", "![search latency against index size](bench/results/search_latency.png)"]
    out += _before_after(d)
    out += _then_and_now(d)
    exp = d.get("experiment_schema")
    if exp:
        out += ["", f"Schema change, measured: the same {f(exp['hours'], 0)} h ({f(exp['segments'])} segments) into a "
                f"fresh index takes {f(exp['before_s'], 1)} s and {f(exp['before_mb'], 1)} MB with the first schema "
                f"(segment `start`/`end` as `NUMERIC`, text stored) and {f(exp['now_s'], 1)} s and "
                f"{f(exp['now_mb'], 1)} MB with today's (both `STORED()`, text not stored): "
                f"**{f(exp['speedup'], 1)}× faster**."]
    exp = d.get("experiment_stored_times")
    if exp:
        out += ["", f"Experiment: indexing the same {f(exp['hours'], 0)} h ({f(exp['segments'])} segments) into a fresh "
                f"index takes {f(exp['as_is_s'], 1)} s with the schema as it is and {f(exp['stored_times_s'], 1)} s "
                f"when the segment `start`/`end` fields are `STORED()` instead of `NUMERIC` "
                f"(**{f(exp['speedup'], 1)}× faster**; see below)."]
    prof = d.get("profile", {})
    if "index_add" in prof:
        out += ["", details(f"cProfile: indexing ({prof['index_add_note']})", prof["index_add"])]
    for kind in ("single", "phrase", "common"):
        if f"search_{kind}" in prof:
            out += ["", details(f"cProfile: searching ({prof[f'search_{kind}_note']})", prof[f"search_{kind}"])]
    return "\n".join(out)


def _before_after(d: dict) -> list[str]:
    """Latency by query kind in the run this one replaced (same corpus and queries, the code before) and
    in this run, at every size: what the code change did."""
    prev = d.get("previous_run")
    if not prev:
        return []
    before = {r["hours"]: r for r in prev["sizes"]}
    cols, head = [], ["query kind (p50 / p99 ms)"]
    for r in d["sizes"]:
        if r["hours"] in before:
            cols.append((before[r["hours"]]["majlis"], r["majlis"]))
            head += [f"{f(r['hours'], 0)} h, before", f"{f(r['hours'], 0)} h, now"]
    last = d["sizes"][-1]
    if "majlis_optimized" in last and "majlis_optimized" in before.get(last["hours"], {}):
        cols.append((before[last["hours"]]["majlis_optimized"], last["majlis_optimized"]))
        head += [f"{f(last['hours'], 0)} h optimized, before", f"{f(last['hours'], 0)} h optimized, now"]

    def cell(lat: dict, kind: str) -> str:
        return f"{f(lat[kind]['p50_ms'], 1)} / {f(lat[kind]['p99_ms'], 1)}" if kind in lat else "–"

    rows = [[label.split(" (")[0], *[cell(lat, kind) for pair in cols for lat in pair]]
            for kind, label in KIND_LABELS]
    if all("index_mb" in lat for pair in cols for lat in pair):
        rows.append(["index size (MB)", *[f(lat["index_mb"], 0) for pair in cols for lat in pair]])
    fts = [(before[r["hours"]].get("fts5"), r.get("fts5")) for r in d["sizes"] if r["hours"] in before]
    if fts and all(b and n for b, n in fts):  # same SQLite code in both runs: the machine's share
        rows.append(["SQLite FTS5, all three kinds (its code unchanged)",
                     *[cell(lat, "all") for pair in fts for lat in pair],
                     *["–"] * (len(head) - 1 - 2 * len(fts))])
    loads = [x for r in d["sizes"] for lat in (r["majlis"], r.get("majlis_optimized", {}))
             for x in lat.get("loadavg_1m", ())]
    load_note = (f" The 1-minute load average while majlis was timed: {f(min(loads), 1)}–{f(max(loads), 1)} "
                 f"(2 cores)." if loads else "")
    codes = (f", code {prev['code']}", f" (code {d['code']})") if prev.get("code") and d.get("code") else ("", "")
    out = ["", f"Before and after: the results this run replaced ({prev['created']}{codes[0]}) against this "
           f"run's{codes[1]}; same corpus, same queries.{load_note}", "", table(head, rows)]
    costs = []
    if prev.get("segments_per_s"):
        costs.append(f"indexing the archive {f(prev['segments_per_s'], 0)} segments/s before, "
                     f"{f(d['indexing']['majlis']['segments_per_s'], 0)} now")
    old_opt = before.get(last["hours"], {}).get("majlis_optimized", {}).get("optimize_s")
    if old_opt and "majlis_optimized" in last:
        costs.append(f"merging it into one segment {f(old_opt, 0)} s before, "
                     f"{f(last['majlis_optimized']['optimize_s'], 0)} s now")
    if costs:
        out += ["", "What it cost: " + "; ".join(costs) + "."]
    return out


def _then_and_now(d: dict) -> list[str]:
    """The first run's numbers beside today's code on the first run's corpus (seed vocabulary only) and
    today's code on today's corpus: what the code changed and what the corpus changed, apart."""
    first, seed = d.get("first_run"), d.get("seed_vocab")
    if not first:
        return []
    by_hours = {r["hours"]: r for r in first["sizes"]}
    now_by_hours = {r["hours"]: r for r in d["sizes"]}
    cols = []  # (title, majlis/fts5 row with p50/p99 per kind, index MB)
    small = seed["sizes"][-1]["hours"] if seed else None
    if small in by_hours:
        cols.append((f"first run, {f(small, 0)} h", by_hours[small]))
        cols.append((f"today's code, first corpus, {f(small, 0)} h", seed["sizes"][-1]))
        if small in now_by_hours:
            cols.append((f"today, {f(small, 0)} h", now_by_hours[small]))
    big = first["sizes"][-1]
    cols.append((f"first run, {f(big['hours'], 0)} h", big))
    if big["hours"] in now_by_hours:
        cols.append((f"today, {f(big['hours'], 0)} h", now_by_hours[big["hours"]]))

    def lat(row: dict, engine: str, kind: str) -> str:
        x = row.get(engine, {}).get(kind)
        return f"{f(x['p50_ms'], 1)} / {f(x['p99_ms'], 1)}" if x else "–"

    def size(row: dict) -> str:
        mb = row["index_mb"]["majlis"] if isinstance(row.get("index_mb"), dict) else row["majlis"]["index_mb"]
        return f"{f(mb, 0)} MB"

    rows = [[f"{name}: {label}, p50 / p99 ms"] + [lat(row, engine, kind) for _, row in cols]
            for engine, name in (("majlis", "majlis"), ("fts5", "FTS5")) for kind, label in KIND_LABELS[:4]]
    rows.append(["majlis index size"] + [size(row) for _, row in cols])
    out = ["", f"The first run, today's code on the first run's corpus (which speaks only the seed's "
           f"{first['vocab_types']} word types, with the first run's query set), and today (p50 / p99, ms):", "",
           table(["measure"] + [title for title, _ in cols], rows)]
    rates = [f"the first run indexed {f(first['indexing_segments_per_s'].get('majlis'), 0)} segments/s "
             f"(FTS5 {f(first['indexing_segments_per_s'].get('fts5'), 0)}) over its whole archive"]
    if seed:
        rates.append(f"today's code indexes the first corpus at {f(seed['indexing']['majlis']['segments_per_s'], 0)} "
                     f"segments/s over {f(seed['corpus']['hours'], 0)} h")
    out += ["", "Indexing: " + "; ".join(rates) + f". `majlis search` cold start in the first run: "
            f"{f(first['cli_cold_s'], 3)} s."]
    return out


def batch(d: dict) -> str:
    if "configs" not in d:  # results from before the Dask executor: local workers only
        d = dict(d, configs={f"local:{w}": dict(r, executor="local", workers=int(w)) for w, r in d["workers"].items()})
    configs = sorted(d["configs"].values(), key=lambda r: (r["executor"] != "local", r["executor"], r["workers"]))
    rows = [[r["executor"], str(r["workers"]), mm(r["wall_s"], 1, " s"), mm(r["throughput"], 2),
             mm(r["peak_tree_rss_mb"], 0, " MB")] for r in configs]
    out = [f"{d['files']} files of {f(d['slice_s']['min'], 0)}–{f(d['slice_s']['max'], 0)} s "
           f"({f(d['audio_s'] / 60, 1)} min of audio in all), `{d['command']}`, fresh output folder each run, "
           f"{d['runs']} run{'s' * (d['runs'] != 1)} per configuration, taken in turn (median, min–max). Wall time "
           f"is the whole command, engine loading and the Dask cluster's start included.", "",
           table(["executor", "workers", "wall", "throughput (audio s / wall s)", "peak RSS (process tree)"], rows)]
    median = {(r["executor"], r["workers"]): r["throughput"]["median"] for r in configs}
    notes = [f"{e} {f(median[e, 2] / median[e, 1], 2)}×" for e in ("local", "dask") if (e, 1) in median and (e, 2) in median]
    if notes:
        out += ["", "Scaling from 1 to 2 workers: " + ", ".join(f"**{n}**" for n in notes) + "."]
    loads = [x for r in configs for run in r["runs"] for x in run.get("loadavg_1m", [])]
    if loads:
        out += ["", f"1-minute load average around the runs: {f(min(loads), 2)}–{f(max(loads), 2)} (2 cores)."]
        rounds = min(len(r["runs"]) for r in configs)
        load_of = [sum(sum(r["runs"][i].get("loadavg_1m", [0])) for r in configs) / (2 * len(configs))
                   for i in range(rounds)]
        quiet = min(range(rounds), key=load_of.__getitem__)
        if rounds > 1:
            walls = ", ".join(f"{r['executor']} {r['workers']}: {f(r['runs'][quiet]['process_wall_s'], 1)} s"
                              for r in configs)
            out += [f"The quietest round (round {quiet + 1}, mean load {f(load_of[quiet], 1)}): {walls}."]
    cost = d.get("client_cost")
    if cost:
        rows = [[label, str(c["files"]), mm(c["audio_minutes_per_file"], 1, " min"), mm(c["segments_per_file"], 0),
                 mm({k: v * 1000 if k != "n" else v for k, v in c["seconds_per_file"].items()}, 1, " ms"),
                 f"{f(c['seconds_per_audio_hour'] * 1000, 1)} ms"]
                for label, c in (("this benchmark's transcripts", cost["short"]),
                                 ("synthetic hour-long episodes", cost["hour"]))]
        out += ["", "The client's own work per file (ledger rows of ten stage events, the transcript read and "
                "added to the index in one commit, the episode's row), whatever executor runs the stages:", "",
                table(["transcripts", "files", "audio per file", "segments per file", "client time per file",
                       "per audio hour"], rows)]
    return "\n".join(out)


def real_whisper(d: dict) -> str:
    labels = {"pipeline": "whole pipeline: faster-whisper tiny.en ∥ builtin diarizer, naming, alignment",
              "faster-whisper": "faster-whisper tiny.en alone (int8, beam 5, VAD)",
              "whisper": "openai-whisper alone, same tiny.en weights (fp32)",
              "sphinx": "sphinx alone", "diarize": "builtin diarizer alone"}
    t = d["targets"]
    rows = []
    for kind, r in d["runs"].items():
        rows.append([labels.get(kind, kind), f(r["wall_s"], 1) + " s", f(r["rtf"], 3), f(r.get("wer"), 3),
                     f(r["peak_tree_rss_mb"], 0) + " MB", f"{f(r['loadavg_1m'][0], 1)}–{f(r['loadavg_1m'][1], 1)}",
                     r.get("measured", d["created"])])
    v = d["verdict"]
    return "\n".join([
        f"Audio: `{d['audio']}` ({f(d['duration_s'] / 60, 1)} min), each row a fresh process; results written "
        f"{d['created']} (code {d.get('code')}).", "",
        table(["run", "wall", "real-time factor", "WER", "peak RSS", "load (1 min, before–after)", "measured"],
              rows), "",
        table(["target (pipeline)", "measured", "met"], [
            [f"real-time factor ≤ {t['rtf']}", f(d["runs"]["pipeline"]["rtf"], 3), ok(v["rtf_ok"])],
            [f"overhead ≤ {t['overhead_ratio']} × the slower of ASR and diarizer alone", f(d["overhead_ratio"], 3),
             ok(v["overhead_ok"])],
            [f"peak RSS ≤ {t['peak_rss_mb']} MB", f(d["runs"]["pipeline"]["peak_tree_rss_mb"], 0) + " MB",
             ok(v["peak_rss_ok"])],
        ])])


def overhead(d: dict) -> str:
    rows = []
    bracketed = "overhead_bracketed_median" in d
    busy = "overhead_vs_busy_median" in d
    for i, r in enumerate(d["rounds"], start=1):
        st = r["stages_s"]
        rows.append([str(i), f(r["asr_alone_s"], 1) + " s"] + ([f(r["asr_beside_busy_s"], 1) + " s"] if busy else [])
                    + [f(r["pipeline_s"], 1) + " s"]
                    + ([f(r["asr_after_s"], 1) + " s"] if bracketed else []) + [f(r["overhead"], 3)]
                    + ([f(r["overhead_bracketed"], 3)] if bracketed else [])
                    + ([f(r["overhead_vs_busy"], 3)] if busy else [])
                    + [f(r["rtf"], 3), f"{f(st['asr'][1], 1)} s", f"{f(st['diarize'][0], 1)}–{f(st['name'][0], 1)} s",
                       f(r["after_asr_s"], 1) + " s", f(r["loadavg_1m"], 1)])
    if bracketed:
        headline = (f"Median overhead against the mean of the ASR runs before and after each pipeline run "
                    f"**{f(d['overhead_bracketed_median'], 3)}** (target ≤ 1.05); against the run before only "
                    f"{f(d['overhead_median'], 3)}")
    else:
        headline = f"Median overhead **{f(d['overhead_median'], 3)}** (target ≤ 1.05)"
    if busy:
        headline += (f"; against faster-whisper alone with a niceness-19 spinner beside it "
                     f"{f(d['overhead_vs_busy_median'], 3)}")
    return "\n".join([
        f"Audio: `{d['audio']}` ({f(d['duration_s'] / 60, 1)} min), one process, faster-whisper alone then the "
        f"pipeline in each round{', and faster-whisper alone once more at the end' if bracketed else ''}; results "
        f"written {d['created']} (code {d.get('code')}). {headline}; median real-time factor "
        f"{f(d['rtf_median'], 3)}.", "",
        table(["round", "faster-whisper alone"] + (["faster-whisper beside a spinner"] if busy else []) + ["pipeline"]
              + (["faster-whisper alone, next"] if bracketed else [])
              + ["overhead"] + (["overhead, bracketed"] if bracketed else [])
              + (["overhead against the one beside a spinner"] if busy else [])
              + ["real-time factor", "pipeline's ASR done at", "diarizer, then naming from", "after the ASR",
                 "load (1 min)"], rows)])


def web(d: dict) -> str:
    t = d["targets"]
    rows = [["p50", f"{f(d['p50_ms'], 1)} ms", ""], ["p99", f"{f(d['p99_ms'], 1)} ms",
            f"< {f(t['p99_ms'], 0)} ms: {ok(d['p99_ms'] < t['p99_ms'])}"], ["max", f"{f(d['max_ms'], 1)} ms", ""],
            ["errors (non-200 or no answer)", f(d["errors"]), f"{f(t['errors'])}: {ok(d['errors'] <= t['errors'])}"]]
    kinds = ", ".join(f"{k} {f(v, 1)} ms" for k, v in d["by_kind_p99_ms"].items())
    return "\n".join([
        f"`majlis serve` as its own process on a {f(d['hours'], 0)} h synthetic archive, {d['clients']} client "
        f"threads on loopback keep-alive connections, {f(d['requests'])} requests (a quarter each: one word, a "
        f"phrase, a word for one speaker, the search page), while another process committed an episode to the "
        f"index every half second ({f(d['commits_during_run'])} commits landed during the run). "
        f"{f(d['requests_per_s'], 0)} requests/s over {f(d['wall_s'], 1)} s.", "",
        table(["latency per request", "measured", "target"], rows), "",
        f"p99 by kind: {kinds}."])


def speakers(d: dict) -> str:
    """Who said it (bench/speakers.py): one row per recording, the bars of issue 17 beside the numbers."""
    def pct(x):
        return "–" if x is None else f"{100 * x:.1f}%"

    rows = []
    for name, c in d["cases"].items():
        named = f"{c['enrolled_named']}/{c['enrolled']}" if "enrolled" in c else "–"
        stranger = ("named" if c["stranger_named"] else "Unknown") if "stranger_named" in c else "–"
        rows.append([name, f(c["der_collar_0.25"], 3), f(c["der_no_collar"], 3),
                     f"{c['speakers_found']}/{c['speakers_true']}", pct(c.get("words_right_turns")),
                     pct(c.get("words_right")), pct(c.get("words_right_named")), named, stranger,
                     pct(c.get("overlap_covered")), f(c["rtf"], 3)])
    head = ["recording", "DER (0.25 s collar)", "DER (no collar)", "speakers found/true", "words right: turns only",
            "words right: re-checked", "words right: by name", "enrolled named", "voice nobody enrolled",
            "overlap covered by two turns", "diarizer real-time factor"]
    lines = [f"Run of {d['created']} (code {d.get('code')}), builtin diarizer (the numpy voice encoder, half the cores).", "",
             table(head, rows)]
    whole = {name: c for name, c in d["cases"].items() if "transcript_words_right" in c}
    if whole:
        lines += ["", "Through the whole pipeline (faster-whisper tiny.en, builtin diarizer), the transcript's words at the "
                      "times the ASR heard them, matched to the reference words by text, on the right speaker:", ""]
        lines += [f"- {name}: {pct(c['transcript_words_right'])} of {c['transcript_words_matched']:,} matched words"
                  for name, c in whole.items()]
    return "\n".join(lines)


def speakers_naming(d: dict) -> str:
    """Naming alone (bench/speakers.py --naming): CAM++ prints against resemblyzer's calibrated decision."""
    rows = []
    for encoder, cases in d["encoders"].items():
        for channel in ("clean", "phone32k"):
            cs = [c for name, c in cases.items() if name.endswith(channel)]
            voices = sum(c["voices"] for c in cs)
            rows.append([encoder, channel, str(len(cs)), f"{sum(c['right'] for c in cs)}/{voices}",
                         str(sum(c["wrong"] for c in cs)), str(voices - sum(c["right"] + c["wrong"] for c in cs)),
                         str(sum(c["readers_missed"] for c in cs)),
                         f"{sum(c['stranger_named'] for c in cs)}/{len(cs)}",
                         f"{sum(c['others_named_right'] for c in cs)}/{len(cs)}"])
    head = ["voices compared as", "channel", "episodes", "diarized voices named right", "named wrong", "left Unknown",
            "readers no voice was named for", "voice nobody enrolled took a name", "the others still named right"]
    return "\n".join([f"Run of {d['created']} (code {d.get('code')}): the real-voice panels of seeds 0-17 (three or "
                      "four women, 60 s), each diarized once by the builtin diarizer and named from studio samples.",
                      "", table(head, rows)])


RENDER = {"real_whisper": real_whisper, "overhead": overhead, "pipeline": pipeline, "whisper_path": whisper_path,
          "whisper_path_cuda": whisper_path_gpu, "search": search, "batch": batch, "web": web, "speakers": speakers,
          "speakers_unseen": speakers, "speakers_naming": speakers_naming}


EARLIER_PIPELINE = "pipeline-asr-in-thread.json"  # the pipeline before sphinx moved to a child process


def load(results_dir: Path) -> dict[str, dict]:
    out = {}
    for name in RENDER:
        p = results_dir / f"{name}.json"
        if p.exists():
            out[name] = json.loads(p.read_text())
    earlier = results_dir / "earlier" / EARLIER_PIPELINE
    if "pipeline" in out and earlier.exists():
        out["pipeline"]["earlier"] = json.loads(earlier.read_text())
    return out


def render(text: str, results: dict[str, dict]) -> str:
    blocks = {"machine": machine(results)}
    for name, fn in RENDER.items():
        if name in results and results[name].get("quick"):
            blocks[name] = f"_only a --quick run is recorded; run `python bench/{name}.py` for the real numbers._\n\n" + fn(results[name])
        elif name in results:
            blocks[name] = fn(results[name])
        else:
            blocks[name] = f"_not measured yet: run `python bench/{name}.py`._"
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n)(?:.*?\n)?(<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{MD.name}: no <!-- bench:{name} --> ... <!-- /bench:{name} --> block")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=common.RESULTS)
    ap.add_argument("--md", type=Path, default=MD)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    old = args.md.read_text()
    new = render(old, load(args.results))
    if args.check:
        if new != old:
            print(f"{args.md} is out of date: run python bench/report.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        tmp = args.md.with_suffix(".md.tmp")
        tmp.write_text(new)
        tmp.replace(args.md)
    print(args.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
