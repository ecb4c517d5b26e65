"""The ONNX models that ship inside majlis (`assets/`: segmentation-3.0, CAM++), each read whole, checked
against the SHA-256 its module pins, and run by onnxruntime (which faster-whisper already brings; no torch)."""

from __future__ import annotations

import hashlib
from importlib import resources

from .errors import ModelError


def onnx_session(name: str, sha256: str):
    """An onnxruntime session of `assets/<name>`; ModelError when the file is not the one pinned."""
    import onnxruntime

    from .voice import _encoder_threads

    blob = resources.files("majlis").joinpath("assets", name).read_bytes()
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise ModelError(f"majlis/assets/{name} is damaged (SHA-256 mismatch); reinstall majlis")
    options = onnxruntime.SessionOptions()
    # Half the cores, as the voice encoder: these models run beside the ASR.
    options.intra_op_num_threads = options.inter_op_num_threads = _encoder_threads()
    return onnxruntime.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
