"""A service that cannot see the training machine's store pulls versions from MLflow."""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np
import pytest

from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.loaders import SklearnModelLoader, TransformersModelLoader
from infrastructure.store.bento_model_store import TEST_SPLIT_FILE, BentoModelStore
from infrastructure.tracking.mlflow_model_source import MlflowPullModelSource
from tests.support.serving import train_and_promote, train_and_promote_text

pytestmark = pytest.mark.slow


def _forget_locally(name: str) -> str:
    """Deletes the stored copy training made, as if the service ran on another machine."""
    tag = BentoModelStore().tag_for_alias(name, "champion")
    assert tag is not None
    bentoml.models.delete(tag)
    return tag


def test_a_tabular_version_missing_locally_is_pulled_and_scores_the_same(tmp_path: Path) -> None:
    container = train_and_promote(tmp_path / "state", "pull-iris")
    original = SklearnModelLoader().load(
        BentoModelStore().tag_for_alias("pull-iris", "champion") or ""
    )
    rows = [(5.1, 3.5, 1.4, 0.2), (6.7, 3.0, 5.2, 2.3), (None, None, 4.0, None)]
    expected = original.scorer.predict_proba(rows)
    old_tag = _forget_locally("pull-iris")
    source = MlflowPullModelSource(
        container.settings.tracking_uri, container.settings.registry_uri, BentoModelStore()
    )

    pulled_tag = source.tag_for_alias("pull-iris", "champion")

    assert pulled_tag is not None and pulled_tag != old_tag
    pulled = SklearnModelLoader().load(pulled_tag)
    assert pulled.version == "1" and pulled.contract == original.contract
    assert np.allclose(pulled.scorer.predict_proba(rows), expected)
    assert bentoml.models.get(pulled_tag).info.labels["pulled_from"] == "mlflow"
    assert source.tag_for_alias("pull-iris", "champion") == pulled_tag, "pulled once"
    assert source.tag_for_alias("pull-iris", "no-such-alias") is None


def test_a_text_version_is_pulled_with_its_tokenizer_and_contract(tmp_path: Path) -> None:
    container = train_and_promote_text(tmp_path / "state", "pull-text")
    settings = TextServingSettings(model_name="pull-text", warmup_batch_sizes=(1,))
    texts = ["a fine film .", "dull and lifeless ."]
    local = BentoModelStore().tag_for_alias("pull-text", "champion") or ""
    expected = TransformersModelLoader(settings).load(local).scorer.predict_proba(texts)
    _forget_locally("pull-text")
    source = MlflowPullModelSource(
        container.settings.tracking_uri, container.settings.registry_uri, BentoModelStore()
    )

    pulled_tag = source.tag_for_alias("pull-text", "champion")

    assert pulled_tag is not None
    pulled = TransformersModelLoader(settings).load(pulled_tag)
    assert pulled.contract.task == "text-classification" and pulled.version == "1"
    assert np.allclose(pulled.scorer.predict_proba(texts), expected, atol=1e-5)
    held_out = Path(bentoml.models.get(pulled_tag).path) / TEST_SPLIT_FILE
    assert len(held_out.read_text().splitlines()) == 872, "int8's guard travels with it"
