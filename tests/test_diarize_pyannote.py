"""The real pyannote.audio 4 pipeline code, run offline on a local community-1-shaped folder whose models
have random weights (the gated weights cannot be downloaded here): plumbing only, never accuracy.

The folder is what Pipeline.from_pretrained reads for community-1: config.yaml naming
SpeakerDiarization with $model/segmentation (PyanNet, powerset), $model/embedding (WeSpeaker ResNet34)
and $model/plda (xvec_transform.npz + plda.npz for VBx clustering)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest

from majlis.audio import decode
from majlis.diarize import Diarization, get_diarizer
from majlis.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
# No usage metrics leave this machine, whichever test imports pyannote.audio first.
os.environ["PYANNOTE_METRICS_ENABLED"] = "false"


def _save(model, folder: Path) -> None:
    """Write a checkpoint the way pyannote's Lightning training does (what Model.from_pretrained reads)."""
    import lightning
    import torch

    folder.mkdir(parents=True)
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)  # adds pyannote.audio versions, architecture, specifications
    torch.save(checkpoint, folder / "pytorch_model.bin")


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    import torch
    import yaml
    from pyannote.audio import __version__
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34
    from pyannote.audio.models.segmentation import PyanNet

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("pipelines") / "community-1-random"
    segmentation = PyanNet(
        sincnet={"stride": 10},
        lstm={"hidden_size": 32, "num_layers": 1, "bidirectional": True},
        linear={"hidden_size": 32, "num_layers": 1},
    )
    segmentation.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=10.0, min_duration=10.0,
        classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2, permutation_invariant=True,
    )
    segmentation.build()
    _save(segmentation, root / "segmentation")
    embedding = WeSpeakerResNet34()
    embedding.specifications = Specifications(
        problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=10.0, min_duration=10.0
    )
    _save(embedding, root / "embedding")
    rng = np.random.default_rng(0)
    (root / "plda").mkdir()
    dim, lda = 256, 128
    np.savez(root / "plda" / "xvec_transform.npz", mean1=np.zeros(dim), mean2=np.zeros(lda),
             lda=np.linalg.qr(rng.standard_normal((dim, lda)))[0])
    np.savez(root / "plda" / "plda.npz", mu=np.zeros(lda), tr=np.eye(lda),
             psi=np.sort(rng.uniform(0.5, 5.0, lda))[::-1])
    config = {
        "dependencies": {"pyannote.audio": __version__},
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "clustering": "VBxClustering",
                "segmentation": "$model/segmentation",
                "embedding": "$model/embedding",
                "plda": "$model/plda",
                "embedding_exclude_overlap": True,
                "segmentation_batch_size": 8,
                "embedding_batch_size": 8,
            },
        },
        "params": {"clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}, "segmentation": {"min_duration_off": 0.0}},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.fixture(scope="module")
def engine(pipeline_dir):
    return get_diarizer("pyannote", pipeline=str(pipeline_dir), device="cpu")


def _well_formed(d: Diarization, duration: float) -> None:
    for turns in (d.turns, d.exclusive):
        assert list(turns) == sorted(turns, key=lambda t: (t.start, t.end, t.speaker))
        for t in turns:
            assert re.fullmatch(r"SPEAKER_\d\d", t.speaker)
            assert 0.0 <= t.start < t.end <= duration + 1e-6
    for a, b in zip(d.exclusive, d.exclusive[1:]):
        assert a.end <= b.start + 1e-6, "exclusive turns overlap"
    assert {t.speaker for t in d.exclusive} <= {t.speaker for t in d.turns}


def test_local_pipeline_runs_offline(engine, pipeline_dir):
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "false"
    assert engine.name == f"pyannote:{pipeline_dir.name}"
    samples = decode(ROOT / "audio" / "panel.mp3")[: 6 * SR]
    calls = []
    d = engine.diarize(samples, hook=lambda *a: calls.append(a))
    assert isinstance(d, Diarization) and d.turns
    _well_formed(d, 6.0)
    assert {c[0] for c in calls} == {"diarize"} and calls[-1][1:] == (1, 1)
    assert all(0.0 <= c[1] <= c[2] for c in calls)
    assert [c[1] for c in calls] == sorted(c[1] for c in calls), "progress never goes back"
    capped = engine.diarize(samples, max_speakers=1)
    _well_formed(capped, 6.0)
    assert len(capped.labels) <= 1


def test_auto_prefers_a_local_pipeline(pipeline_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="majlis"):
        engine = get_diarizer("auto", pipeline=str(pipeline_dir))
    assert engine.name.startswith("pyannote:") and not caplog.records


def test_auto_without_token_or_cache_is_builtin(monkeypatch, tmp_path, caplog):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    # Any network attempt would fail loudly instead of waiting on retries.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with caplog.at_level(logging.WARNING, logger="majlis"):
        engine = get_diarizer("auto")
    assert engine.name == "builtin:campplus+segmentation-3.0"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "builtin" in warnings[0] and "HF_TOKEN" in warnings[0]


def test_unavailable_hub_pipeline_is_one_line(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as e:
        get_diarizer("pyannote", pipeline="majlis-tests/no-such-pipeline", hf_token="hf_not_a_real_token")
    message = str(e.value)
    assert "\n" not in message
    for needed in ("majlis-tests/no-such-pipeline", "--hf-token", "HF_TOKEN", "--diarizer builtin"):
        assert needed in message
    assert capsys.readouterr().out == "", "pyannote's download advice must not reach stdout"


def test_no_token_fails_fast_without_the_network(monkeypatch, tmp_path):
    import huggingface_hub
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)  # no `huggingface-cli login` token either
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError) as e:
        get_diarizer("pyannote")
    assert "no Hugging Face token" in str(e.value) and "--diarizer builtin" in str(e.value)


def test_from_pretrained_none_is_a_model_error(monkeypatch, tmp_path):
    # pyannote's from_pretrained answers None when it could not download; that must not pass for a pipeline.
    import huggingface_hub.constants
    from pyannote.audio import Pipeline

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(lambda cls, *a, **k: None))
    with pytest.raises(ModelError, match="download failed.*HF_TOKEN.*--diarizer builtin"):
        get_diarizer("pyannote", pipeline="someone/some-pipeline", hf_token="hf_x")


def test_broken_local_folder_is_one_line(tmp_path):
    (tmp_path / "config.yaml").write_text("pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n"
                                          "  params:\n    segmentation: $model/segmentation\n")
    with pytest.raises(ModelError) as e:
        get_diarizer("pyannote", pipeline=str(tmp_path))
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_missing_local_folder_is_named(tmp_path):
    with pytest.raises(ModelError, match="no such pipeline folder"):
        get_diarizer("pyannote", pipeline=str(tmp_path / "nowhere"))


def test_exclusive_fallback_for_pipelines_without_one():
    from majlis.diarize.pyannote import _exclusive
    from majlis.types import Turn

    turns = (Turn("A", 0.0, 5.0), Turn("B", 4.0, 6.0), Turn("A", 7.0, 10.0), Turn("C", 8.0, 9.0))
    assert _exclusive(turns) == (
        Turn("A", 0.0, 4.0), Turn("B", 4.0, 6.0), Turn("A", 7.0, 8.0), Turn("C", 8.0, 9.0), Turn("A", 9.0, 10.0)
    )
