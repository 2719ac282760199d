"""The real BentoML store (the session's temp BENTOML_HOME): a save cut short by a killed
process is never listed, aliased or promoted, and does not hide the complete models."""

from __future__ import annotations

import os
import time
from pathlib import Path

import bentoml
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from infrastructure.store.bento_model_store import (
    ABANDONED_AFTER_S,
    ALIAS_LABEL,
    MODEL_YAML,
    SAVING_LABEL,
    VERSION_LABEL,
    BentoModelStore,
)
from shared.errors import ModelNotFoundError
from tests.fakes.registry import fake_contract


def _model() -> LogisticRegression:
    return LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), ["a", "a", "b", "b"])


def _save(store: BentoModelStore, name: str, version: str, alias: str = "") -> str:
    labels = {VERSION_LABEL: version, **({ALIAS_LABEL: alias} if alias else {})}
    return store.save_classifier(name, _model(), labels, fake_contract())


def _folder(tag: str) -> Path:
    name, version = tag.split(":")
    return Path(os.environ["BENTOML_HOME"]) / "models" / name / version


def _cut(tag: str, keep_info: bool) -> Path:
    """Makes a saved version look like what a process killed in the middle of BentoML's
    copy into the store leaves: part of its files (model.yaml, if copied, still carrying
    the saving mark)."""
    folder = _folder(tag)
    info = folder / MODEL_YAML
    if keep_info:
        text = info.read_text().replace("labels:\n", f"labels:\n  {SAVING_LABEL}: copying\n", 1)
        info.write_text(text)
        (folder / "saved_model.pkl").unlink()
    else:
        info.unlink()
    return folder


def test_a_saved_model_is_listed_without_the_saving_mark() -> None:
    store = BentoModelStore()
    tag = _save(store, "store-whole", "1", alias="champion")
    assert store.list_tags("store-whole") == {"1": tag}
    assert store.tag_for_alias("store-whole", "champion") == tag
    assert SAVING_LABEL not in bentoml.models.get(tag).info.labels


@pytest.mark.parametrize("keep_info", [False, True], ids=["no model.yaml", "weights missing"])
def test_a_save_cut_short_is_never_listed_aliased_or_promoted(keep_info: bool) -> None:
    name = f"store-cut-{int(keep_info)}"
    store = BentoModelStore()
    champion = _save(store, name, "1", alias="champion")
    _cut(_save(store, name, "2"), keep_info)

    assert store.list_tags(name) == {"1": champion}
    assert store.tag_for_alias(name, "champion") == champion
    assert store.find_tag(name, "2") is None
    with pytest.raises(ModelNotFoundError, match="registry version 2"):
        store.mark_alias(name, "champion", "2")
    assert store.tag_for_alias(name, "champion") == champion


def test_the_next_save_removes_only_abandoned_unfinished_copies() -> None:
    name = "store-abandoned"
    store = BentoModelStore()
    # Both saved first: BentoML's own save reads the "latest" version, which a killed
    # save never becomes.
    old_tag, recent_tag = _save(store, name, "1"), _save(store, name, "2")
    old, recent = _cut(old_tag, keep_info=False), _cut(recent_tag, keep_info=True)
    long_ago = time.time() - ABANDONED_AFTER_S - 60
    os.utime(old, (long_ago, long_ago))

    tag = _save(store, name, "3", alias="champion")

    assert not old.exists(), "a copy abandoned long ago is removed"
    assert recent.exists(), "a copy that may still be running is left alone"
    assert store.list_tags(name) == {"3": tag}
