"""Writes src/majlis/assets/voice_encoder.npz: resemblyzer's pretrained voice encoder (Apache-2.0, Corentin
Jemine / Resemble AI) as plain float32 arrays, so that majlis runs it with numpy and needs no torch.

Run once, where resemblyzer and torch are installed (`make install` has both):
    .venv/bin/python tools/export_voice_encoder.py
then put the printed SHA-256 into majlis/encoder.py (WEIGHTS_SHA256).
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src" / "majlis" / "assets" / "voice_encoder.npz"


def main() -> None:
    import resemblyzer
    import torch

    source = Path(resemblyzer.__file__).parent / "pretrained.pt"
    state = torch.load(source, map_location="cpu")["model_state"]
    # The similarity scale and bias only served training; the optimizer's state is not the model.
    arrays = {k.replace(".", "_"): v.numpy().astype(np.float32) for k, v in state.items()
              if k.startswith(("lstm.", "linear."))}
    # np.savez's layout, written by hand with fixed entry times so that the file (and its pinned hash) is the
    # same on every run; stored, not deflated: float weights barely compress.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, arrays[name], allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(2000, 1, 1, 0, 0, 0)), member.getvalue())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(buf.getvalue())
    print(f"{OUT} {len(buf.getvalue())} bytes sha256 {hashlib.sha256(buf.getvalue()).hexdigest()}", file=sys.stderr)


if __name__ == "__main__":
    main()
