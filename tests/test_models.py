"""The models inside majlis (models.py): a file that is not the one pinned is refused with one clear error."""

from __future__ import annotations

import pytest

from majlis import campplus
from majlis.diarize import overlaps
from majlis.errors import ModelError


@pytest.mark.parametrize("module", [overlaps, campplus], ids=["segmentation-3.0", "campplus"])
def test_a_damaged_model_is_refused(module, monkeypatch):
    module._session.cache_clear()
    monkeypatch.setattr(module, "MODEL_SHA256", "0" * 64)
    try:
        with pytest.raises(ModelError, match=f"assets/{module.MODEL} is damaged"):
            module.load()
    finally:
        module._session.cache_clear()
