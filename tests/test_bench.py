"""The bench/ scripts keep working: each --quick mode runs for real into a temp folder (never over the
committed results) and writes JSON with the expected keys and sane values. No timing is asserted here:
speed targets live in bench/ and BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import corpus  # noqa: E402
import report  # noqa: E402


def run_quick(script: str, out: Path, *extra: str, timeout: float = 240) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), "--quick", "--out-dir", str(out), *extra],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / f"{script}.json").read_text())
    assert data["quick"] is True and data["benchmark"] == script
    assert data["machine"]["cpus"] >= 1 and data["machine"]["speed_probe_s"] > 0
    assert data["code"] or not (ROOT / ".git").exists()  # the commit measured, in a git checkout
    return data


def positive_summary(s: dict) -> None:
    assert s["n"] >= 1
    assert 0 < s["min"] <= s["median"] <= s["max"]


# -- pure helpers -------------------------------------------------------------------------------------------

def test_percentile_and_summary():
    vals = list(range(1, 101))
    assert common.percentile(vals, 50) == 50
    assert common.percentile(vals, 99) == 99
    assert common.percentile([3.0], 99) == 3.0
    assert common.summary([3, 1, 2]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    with pytest.raises(ValueError):
        common.percentile([], 50)


def test_corpus_is_deterministic_and_speech_rate():
    lang = corpus.Language(corpus.source_texts())
    a = list(corpus.episodes(lang, 2.0, seed=1))
    b = list(corpus.episodes(lang, 2.0, seed=1))
    assert a == b
    c = corpus.counts(a)
    assert abs(c["hours"] - 2.0) < 1e-6
    words_per_min = c["words"] / (c["hours"] * 60)
    assert 120 < words_per_min < 180
    lengths = [end - start for spec in a for _, start, end, _ in spec["segments"]]
    assert max(lengths) <= 30.0 + 1e-9 and sorted(lengths)[len(lengths) // 2] > 5.0
    t = corpus.to_transcript(a[0])
    assert t.segments[0].words[0].start == t.segments[0].start
    assert all(len(s.words) == len(s.text.split()) for s in t.segments)


def test_archive_corpus_has_a_real_vocabulary():
    lang = corpus.archive_language()
    a = list(corpus.episodes(lang, 2.0, seed=1))
    assert a == list(corpus.episodes(lang, 2.0, seed=1))
    words = [w.lower() for spec in a for seg in spec["segments"] for w in seg[3]]
    assert 120 < len(words) / 120 < 180  # words a minute
    assert len(set(words)) > 3_000  # the seed alone has under 500 word types
    everyday = lang.background_content_words()
    assert len(everyday) > 10_000 and not {w.lower() for w in everyday} & {w.lower() for w in lang.vocab}


def test_run_measured_reports_child_peak_memory():
    # A child that holds ~200 MB: the polled tree peak and the kernel's own peak must both see it.
    code = ("import sys, json, time, resource; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
            "time.sleep(0.6); print(json.dumps({'peak': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))")
    r = common.run_measured([sys.executable, "-c", code])
    assert r["peak"] / 1024 > 190
    assert r["peak_tree_rss_mb"] > 190
    assert r["process_wall_s"] > 0.5 and not r["timed_out"]


def test_run_measured_timeout_keeps_partial_trace():
    r = common.run_measured([sys.executable, "-c", "import time; time.sleep(30)"], timeout=1.0,
                            partial_on_timeout=True)
    assert r["timed_out"] and r["process_wall_s"] < 10
    with pytest.raises(RuntimeError, match="timed out"):
        common.run_measured([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


# -- the scripts, end to end --------------------------------------------------------------------------------

@pytest.mark.slow
def test_search_quick(tmp_path):
    d = run_quick("search", tmp_path)
    assert d["corpus"]["segments"] > 100 and d["corpus"]["words"] > d["corpus"]["segments"]
    for engine in ("majlis", "fts5"):
        assert d["indexing"][engine]["segments_per_s"] > 0
        for row in d["sizes"]:
            assert row[engine]["index_mb"] > 0
            for kind in ("single", "phrase", "speaker", "all"):
                assert 0 < row[engine][kind]["p50_ms"] <= row[engine][kind]["p99_ms"]
            assert row[engine]["mean_hits"]["single"] > 0
    assert d["cli_cold"]["wall_s"]["median"] > 0, d["cli_cold"]
    assert "index.py" in d["profile"]["index_add"] and "search" in d["profile"]["search_phrase"]
    assert (tmp_path / "search_latency.png").stat().st_size > 1000


@pytest.mark.slow
def test_pipeline_quick(tmp_path):
    d = run_quick("pipeline", tmp_path, "--seconds", "30")  # half the default slice: keeps this file short
    assert 28 < d["duration_s"] < 32
    s = d["summary"]
    for key in ("pipeline_wall_s", "asr_alone_s", "diarize_alone_s", "overhead_ratio", "rtf",
                "pipeline_peak_rss_mb", "asr_peak_rss_mb", "diarize_peak_rss_mb"):
        positive_summary(s[key])
    p = d["rounds"][0]["pipeline"]
    assert p["words"] > 10 and p["segments"] > 0
    assert {"decode_stage", "asr_stage", "diarize_stage", "naming_stage", "assemble"} <= set(p["spans"])
    assert p["hooks"], "the pipeline reported no progress through its hook"
    assert set(d["verdict"]) >= {"overhead_ok", "rtf_ok", "peak_rss_ok"}


@pytest.mark.slow
def test_whisper_path_quick(tmp_path):
    d = run_quick("whisper_path", tmp_path)
    s = d["summary"]
    for key in ("majlis_wall_s", "whisper_alone_s", "inside_whisper_s", "overhead_ratio", "encoder_30s_window_s",
                "decode_ms_per_step"):
        positive_summary(s[key])
    assert d["same_work"], "majlis and whisper alone decoded different numbers of tokens"
    assert d["rounds"][0]["majlis"]["whisper_calls"] >= 1
    assert d["model"]["parameters"] > 1_000_000


def test_whisper_path_rejects_unknown_model_shape(capsys):
    import whisper_path

    with pytest.raises(SystemExit) as e:
        whisper_path.main(["--dims", "base,huge"])
    assert e.value.code == 2
    assert "unknown shape huge" in capsys.readouterr().err


@pytest.mark.slow
def test_batch_quick(tmp_path):
    from majlis.cli import main

    if main.get_command(None, "batch") is None:
        pytest.skip("`majlis batch` is not registered yet")
    d = run_quick("batch", tmp_path, "--configs", "local:1,dask:2", "--hour-files", "1")
    assert d["files"] == 4 and d["audio_s"] > 30
    for name, (executor, workers) in {"local:1": ("local", 1), "dask:2": ("dask", 2)}.items():
        c = d["configs"][name]
        assert (c["executor"], c["workers"]) == (executor, workers)
        positive_summary(c["throughput"])
        assert c["runs"][0]["transcripts"] == 4
    short, hour = d["client_cost"]["short"], d["client_cost"]["hour"]
    assert short["files"] == 4 and hour["files"] == 1 and hour["audio_minutes_per_file"]["median"] >= 30
    positive_summary(short["seconds_per_file"])
    assert "| dask | 2 |" in report.batch(d)


def test_speakers_quick(tmp_path):
    data = run_quick("speakers", tmp_path)
    cases = data["cases"]
    assert {"sample.wav", "flite-panel", "panel0-3w-clean", "panel0-3w-phone32k"} <= set(cases)
    for c in cases.values():
        assert 0 <= c["der_collar_0.25"] <= c["der_no_collar"] <= 1 and 0 <= c["words_right"] <= 1
        assert c["speakers_found"] >= 1 and c["rtf"] > 0
    assert cases["sample.wav"]["speakers_true"] == 2 and cases["sample.wav"]["words"] == 81
    assert cases["panel0-3w-phone32k"]["enrolled"] == 3


def test_report_renders_every_block(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    shutil.copy(ROOT / "BENCHMARKS.md", md)
    assert report.main(["--md", str(md), "--results", str(common.RESULTS)]) == 0
    text = md.read_text()
    for name in ("machine", *report.RENDER):
        assert f"<!-- bench:{name} -->" in text and f"<!-- /bench:{name} -->" in text
    # Each result's speed probe is shown beside its date, where it has one (results before it have none).
    m = common.machine()
    line = report.machine({"search": {"created": "then", "machine": m},
                           "batch": {"created": "before", "machine": {**m, "speed_probe_s": None}}})
    assert f"batch: before, search: then (speed probe {m['speed_probe_s'] * 1000:.0f} ms)." in line
    # The committed BENCHMARKS.md is what report.py makes of the committed results.
    assert report.main(["--check", "--results", str(common.RESULTS)]) == 0


@pytest.mark.slow
def test_real_whisper_quick(tmp_path):
    data = run_quick("real_whisper", tmp_path, timeout=600)  # four engines on the 3.3-minute demo panel
    runs = data["runs"]
    assert set(runs) == {"pipeline", "faster-whisper", "sphinx", "diarize"}
    assert runs["pipeline"]["engine"] == runs["faster-whisper"]["engine"] == "faster-whisper:tiny.en"
    for kind in ("pipeline", "faster-whisper", "sphinx"):
        assert 0 <= runs[kind]["wer"] < 0.5
    assert all(r["wall_s"] > 0 and r["peak_tree_rss_mb"] > 0 for r in runs.values())
    assert data["overhead_ratio"] > 0 and set(data["verdict"]) == {"rtf_ok", "overhead_ok", "peak_rss_ok"}


@pytest.mark.slow
def test_web_quick(tmp_path):
    d = run_quick("web", tmp_path)
    assert d["answered"] == d["requests"] == 200 and d["clients"] == 2
    assert d["errors"] == 0 and d["statuses"] == {"200": 200}, d["error_samples"]
    assert d["commits_during_run"] >= 0 and 0 < d["p50_ms"] <= d["p99_ms"] <= d["max_ms"]
    assert set(d["by_kind_p99_ms"]) == {"single", "phrase", "speaker", "page"}
