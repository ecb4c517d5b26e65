"""The whisper path: majlis with whisper ASR against whisper.transcribe alone, same model, same audio.

No weights can be downloaded here, so the model is whisper `base` in shape (74 M parameters) with random
weights, saved as a checkpoint and loaded the way a user's local checkpoint is. Random weights make
nonsense text, but the arithmetic per token is the real one. To make both sides do identical work, the
majlis run records the exact arguments majlis passes to whisper's transcribe (audio and options); the
whisper-alone run replays them with the same random seed, and the token counts must match.

Also timed alone: the encoder on one 30-s window, and a fixed number of greedy decoding steps.
The pipeline runs with --diarizer none so the comparison is ASR against ASR. `--device cuda` runs both sides
on a GPU (fp16, as majlis and whisper do there) and writes whisper_path_cuda.json beside the CPU result.

    nice -n 19 python bench/whisper_path.py     # base dims, 60 s of the demo panel, 3 rounds, CPU
    python bench/whisper_path.py --device cuda --dims base,turbo --seconds 198   # on a GPU machine
    python bench/whisper_path.py --quick        # mini dims, 5 s, one round
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

BASE = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8, n_audio_layer=6, n_vocab=51865,
            n_text_ctx=448, n_text_state=512, n_text_head=8, n_text_layer=6)
# What majlis picks by default on a GPU (large-v3-turbo): a 32-layer encoder and a 4-layer decoder.
TURBO = dict(n_mels=128, n_audio_ctx=1500, n_audio_state=1280, n_audio_head=20, n_audio_layer=32,
             n_vocab=51866, n_text_ctx=448, n_text_state=1280, n_text_head=20, n_text_layer=4)
# --quick only: the smallest shape whisper accepts with its real tokenizer (vocabulary and contexts kept).
TINY = dict(BASE, n_audio_state=64, n_audio_head=2, n_audio_layer=2, n_text_state=64, n_text_head=2,
            n_text_layer=2)
DIMS = {"base": BASE, "turbo": TURBO, "mini": TINY}
DECODE_STEPS = 32
# Random weights never satisfy whisper's quality checks, so its temperature fallback (five samples at each of
# five temperatures) would decode every window 26 times over, for as long as chance decides. A fixed amount of
# decoding instead: greedy, at most this many tokens a window, the same in both runs.
FULL_DECODE = {"sample_len": 64, "temperature": 0.0}
QUICK_DECODE = {"sample_len": 8, "temperature": 0.0}  # --quick: a shorter cap keeps it under a minute


def make_checkpoint(dims: dict, path: Path) -> int:
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    model = Whisper(ModelDimensions(**dims))
    torch.save({"dims": dims, "model_state_dict": model.state_dict()}, path)
    return sum(p.numel() for p in model.parameters())


def _tokens(result) -> int:
    return sum(len(s.get("tokens", ())) for s in result.get("segments", ()))


def _jsonable(kwargs: dict) -> dict:
    out = {}
    for k, v in kwargs.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = {"__unserializable__": repr(v)}
    return out


def worker_majlis(ckpt: Path, audio_path: Path, capture: Path, decode_options: dict | None, device: str) -> dict:
    """majlis with whisper ASR; every call majlis makes to whisper's transcribe is recorded for replay."""
    import numpy as np
    import torch
    import whisper
    import whisper.model

    from majlis import pipeline
    from majlis.asr import get_asr

    inside = {"calls": 0, "seconds": 0.0, "tokens": []}
    real = whisper.model.Whisper.transcribe

    def recorded(model, audio, **kwargs):
        i = inside["calls"]
        np.save(capture / f"audio{i}.npy", audio.cpu().numpy() if hasattr(audio, "cpu") else np.asarray(audio))
        (capture / f"kwargs{i}.json").write_text(json.dumps(_jsonable(kwargs)))
        torch.manual_seed(i)  # the replay seeds each call the same way: sampling at temperature > 0 matches
        t = time.perf_counter()
        result = real(model, audio, **kwargs)
        inside["seconds"] += time.perf_counter() - t
        inside["calls"] += 1
        inside["tokens"].append(_tokens(result))
        return result

    whisper.model.Whisper.transcribe = recorded
    whisper.transcribe = recorded
    options = pipeline.Options(asr="whisper", model=str(ckpt), diarizer="none", language="en", device=device)
    t = time.perf_counter()
    if decode_options:  # a fixed amount of decoding (see FULL_DECODE)
        engines = pipeline.Engines(get_asr("whisper", model=str(ckpt), language="en", device=device,
                                           decode_options=decode_options), None)
    else:
        engines = pipeline.Engines.load(options)
    load_s = time.perf_counter() - t
    cpu = common.cpu_seconds()
    t = time.perf_counter()
    tr = pipeline.transcribe_file(audio_path, options=options, engines=engines)
    wall = time.perf_counter() - t
    cpu = common.cpu_seconds() - cpu
    return {"load_s": round(load_s, 3), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "inside_whisper_s": round(inside["seconds"], 3), "whisper_calls": inside["calls"],
            "tokens_per_call": inside["tokens"], "tokens": sum(inside["tokens"]), "segments": len(tr.segments),
            "words": len(tr.words), "engine": tr.engines.get("asr"), "threads": torch.get_num_threads(),
            **_gpu_peak(device), **common.self_peak_mb()}


def _gpu_peak(device: str) -> dict:
    import torch

    if not device.startswith("cuda"):
        return {}
    return {"gpu_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}


def _load_kwargs(path: Path) -> tuple[dict, list[str]]:
    kwargs = json.loads(path.read_text())
    bad = [k for k, v in kwargs.items() if isinstance(v, dict) and "__unserializable__" in v]
    for k in bad:
        kwargs.pop(k)
    return kwargs, bad


def worker_whisper(ckpt: Path, capture: Path, audio_path: Path | None, device: str) -> dict:
    """whisper alone. Replay: the very calls majlis made. Whole: one whisper.transcribe over the whole
    recording with the same options, as someone using whisper directly would run it."""
    import numpy as np
    import torch
    import whisper

    t = time.perf_counter()
    model = whisper.load_model(str(ckpt), device=device)
    load_s = time.perf_counter() - t
    calls = sorted(capture.glob("audio*.npy"), key=lambda p: int(p.stem[5:]))
    if not calls:
        raise SystemExit(f"nothing captured in {capture}")
    whole = None
    if audio_path is not None:
        from majlis.audio import decode

        whole = decode(audio_path)
    cpu = common.cpu_seconds()
    tokens, dropped = [], set()
    t = time.perf_counter()
    if whole is None:
        for i, p in enumerate(calls):
            audio = np.load(p)
            kwargs, bad = _load_kwargs(capture / f"kwargs{i}.json")
            dropped.update(bad)
            torch.manual_seed(i)
            tokens.append(_tokens(whisper.transcribe(model, audio, **kwargs)))
    else:
        kwargs, bad = _load_kwargs(capture / "kwargs0.json")
        dropped.update(bad)
        torch.manual_seed(0)
        tokens.append(_tokens(whisper.transcribe(model, whole, **kwargs)))
    wall = time.perf_counter() - t
    cpu = common.cpu_seconds() - cpu
    kwargs, _ = _load_kwargs(capture / "kwargs0.json")
    gpu = _gpu_peak(device)
    micro = micro_bench(model, fp16=bool(kwargs.get("fp16"))) if whole is None else {}
    return {"load_s": round(load_s, 3), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "calls": len(tokens),
            "tokens_per_call": tokens, "tokens": sum(tokens), "kwargs": kwargs, "dropped_kwargs": sorted(dropped),
            "threads": torch.get_num_threads(), **micro, **gpu, **common.self_peak_mb()}


def micro_bench(model, repeats: int = 3, fp16: bool = False) -> dict:
    """Encoder on one 30-s window; DECODE_STEPS greedy steps with the key/value cache, as whisper decodes
    (in half precision where whisper's transcribe would use it)."""
    import torch
    import whisper
    from whisper.tokenizer import get_tokenizer

    cuda = model.device.type == "cuda"

    def clock() -> float:
        if cuda:  # kernels run asynchronously: wait for them before reading the clock
            torch.cuda.synchronize()
        return time.perf_counter()

    mel = whisper.log_mel_spectrogram(torch.zeros(whisper.audio.N_SAMPLES) + 0.01 * torch.randn(whisper.audio.N_SAMPLES),
                                      model.dims.n_mels).unsqueeze(0)
    mel = mel.to(model.device, torch.float16 if fp16 else torch.float32)
    enc, dec = [], []
    tok = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language="en", task="transcribe")
    with torch.no_grad():
        for _ in range(repeats):
            t = clock()
            features = model.embed_audio(mel)
            enc.append(clock() - t)
            cache, hooks = model.install_kv_cache_hooks()
            tokens = torch.tensor([list(tok.sot_sequence_including_notimestamps)], device=model.device)
            t = clock()
            for i in range(DECODE_STEPS):
                logits = model.decoder(tokens if i == 0 else tokens[:, -1:], features, kv_cache=cache)
                tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=-1)
            dec.append(clock() - t)
            for h in hooks:
                h.remove()
    return {"encoder_s": common.summary(enc), "decode_steps": DECODE_STEPS,
            "decode_ms_per_step": common.summary([d / DECODE_STEPS * 1000 for d in dec])}


def measure(dims_name: str, dims: dict, clip: Path, seconds: float, runs: int, quick: bool, device: str,
            tmp: Path) -> dict:
    """Rounds of majlis against the replay for one model shape; the plain whole-clip run once."""
    decode_options = QUICK_DECODE if quick else FULL_DECODE
    ckpt = tmp / f"random-{dims_name}.pt"
    params = make_checkpoint(dims, ckpt)
    rounds = []
    flags = [*(["--quick"] if quick else []), "--device", device]
    for i in range(runs):
        capture = tmp / f"capture-{dims_name}-{i}"
        capture.mkdir()
        base = [sys.executable, __file__, *flags, "--model", str(ckpt), "--capture", str(capture)]
        m = common.run_measured([*base, "--worker", "majlis", "--audio", str(clip)])
        if m["whisper_calls"] == 0:
            raise SystemExit("the majlis whisper engine never called whisper's transcribe; nothing to compare")
        w = common.run_measured([*base, "--worker", "replay"])
        r = {"majlis": m, "whisper": w,
             "overhead_s": round(m["wall_s"] - w["wall_s"], 3),
             "overhead_ratio": round(m["wall_s"] / w["wall_s"], 4),
             "in_process_overhead_s": round(m["wall_s"] - m["inside_whisper_s"], 3),
             "same_tokens": m["tokens_per_call"] == w["tokens_per_call"]}
        if i == 0:  # plain whisper over the whole clip: once, it is a different amount of work
            r["whole"] = common.run_measured([*base, "--worker", "whole", "--audio", str(clip)])
        rounds.append(r)
        print(f"{dims_name} round {i + 1}/{runs}: majlis {m['wall_s']} s (inside whisper {m['inside_whisper_s']} s, "
              f"{m['whisper_calls']} calls), replayed alone {w['wall_s']} s, tokens {m['tokens']}/{w['tokens']}",
              file=sys.stderr, flush=True)
    ckpt.unlink()

    def s(f):
        return common.summary([f(r) for r in rounds])

    summary = {
        "majlis_wall_s": s(lambda r: r["majlis"]["wall_s"]),
        "whisper_alone_s": s(lambda r: r["whisper"]["wall_s"]),
        "inside_whisper_s": s(lambda r: r["majlis"]["inside_whisper_s"]),
        "overhead_s": s(lambda r: r["overhead_s"]),
        "overhead_ratio": s(lambda r: r["overhead_ratio"]),
        "in_process_overhead_s": s(lambda r: r["in_process_overhead_s"]),
        "rtf": s(lambda r: r["majlis"]["wall_s"] / seconds),
        "tokens": s(lambda r: r["whisper"]["tokens"]),
        "whisper_calls": s(lambda r: r["majlis"]["whisper_calls"]),
        "encoder_30s_window_s": s(lambda r: r["whisper"]["encoder_s"]["median"]),
        "decode_ms_per_step": s(lambda r: r["whisper"]["decode_ms_per_step"]["median"]),
        "majlis_peak_rss_mb": s(lambda r: r["majlis"]["peak_tree_rss_mb"]),
        "whisper_peak_rss_mb": s(lambda r: r["whisper"]["peak_tree_rss_mb"]),
    }
    if device.startswith("cuda"):
        summary["majlis_gpu_peak_mb"] = s(lambda r: r["majlis"]["gpu_peak_mb"])
        summary["whisper_gpu_peak_mb"] = s(lambda r: r["whisper"]["gpu_peak_mb"])
    return {
        "model": {"dims_name": dims_name, "dims": dims, "parameters": params, "weights": "random (seed 0)",
                  "device": device},
        "decode_options": decode_options,
        "whisper_kwargs": rounds[0]["whisper"]["kwargs"],
        "summary": summary,
        "same_work": all(r["same_tokens"] for r in rounds),
        "whole_file": {k: rounds[0]["whole"][k] for k in ("wall_s", "cpu_s", "tokens", "peak_tree_rss_mb")},
        "rounds": rounds,
    }


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="mini dims, 5 s of audio, one round (< 1 min)")
    ap.add_argument("--audio", type=Path, default=common.ROOT / "audio" / "panel.mp3")
    ap.add_argument("--seconds", type=float, default=None, help="length of the slice (default 60; 5 quick)")
    ap.add_argument("--runs", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda; cuda writes whisper_path_cuda.json")
    ap.add_argument("--dims", default=None, help=f"comma-separated model shapes from {sorted(DIMS)} "
                                                 "(default base; mini with --quick)")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    ap.add_argument("--worker", choices=("majlis", "replay", "whole"), help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--capture", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    sys.path.insert(0, str(common.ROOT / "src"))
    decode_options = QUICK_DECODE if args.quick else FULL_DECODE
    if args.worker == "majlis":
        common.emit(worker_majlis(args.model, args.audio, args.capture, decode_options, args.device))
        return 0
    if args.worker in ("replay", "whole"):
        audio = args.audio if args.worker == "whole" else None
        common.emit(worker_whisper(args.model, args.capture, audio, args.device))
        return 0

    names = (args.dims or ("mini" if args.quick else "base")).split(",")
    unknown = [n for n in names if n not in DIMS]
    if unknown:
        ap.error(f"--dims: unknown shape {', '.join(unknown)} (known: {', '.join(sorted(DIMS))})")
    cuda = args.device.startswith("cuda")
    seconds = args.seconds or (5.0 if args.quick else 60.0)
    runs = args.runs or (1 if args.quick else 3)
    tmp = Path(tempfile.mkdtemp(prefix="majlis-bench-whisper-"))
    try:
        clip = tmp / "clip.wav"
        common.cut(args.audio, clip, 0.0, seconds)
        models = [measure(n, DIMS[n], clip, seconds, runs, args.quick, args.device, tmp) for n in names]
        data = {"quick": args.quick, **models[0], "other_models": models[1:],
                "audio": f"{args.audio.name} [0:{seconds:g}]", "duration_s": seconds, "runs": runs,
                "gpu": _gpu_name() if cuda else "none: CPU only"}
        print(common.write_result("whisper_path_cuda" if cuda else "whisper_path", data, args.out_dir))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
