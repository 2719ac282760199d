"""Which stored model a service serves, and what it says when there is none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infrastructure.config.settings import ServingSettings
from infrastructure.serving.stored_model import resolve_served_model
from infrastructure.store.bento_model_store import BentoModelStore
from shared.errors import ModelNotFoundError


def test_a_missing_champion_names_the_store_bentoml_reads() -> None:
    store = Path(os.environ["BENTOML_HOME"]) / "models"
    assert BentoModelStore.location() == store
    with pytest.raises(ModelNotFoundError, match=f"BentoML store at {store}:"):
        resolve_served_model(ServingSettings(model_name="never-trained"))
