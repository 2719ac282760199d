"""Test-wide isolation: every run gets its own MLflow/BentoML state in a temp folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# prometheus_client picks its multi-process mode when first imported, which happens while
# test modules are collected, before any fixture runs. BentoML's /metrics reads this folder.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mlops-prom-"))


@pytest.fixture(scope="session", autouse=True)
def isolated_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point MLOPS_HOME and BENTOML_HOME at a temp dir before anything touches a store.

    BentoML reads BENTOML_HOME once per process, so the store is shared by the session;
    tests that need their own registry state use unique model names.
    """
    home = tmp_path_factory.mktemp("mlops-home")
    keys = ("MLOPS_HOME", "BENTOML_HOME", "MLOPS_BENTOML_HOME")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ["MLOPS_HOME"] = str(home)
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    os.environ["MLOPS_BENTOML_HOME"] = str(home / "bentoml")
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def text_champion(isolated_state: Path) -> str:
    """A fine-tuned text model (smoke recipe, about a minute) promoted to champion, once."""
    from tests.support.serving import train_and_promote_text

    name = "serve-sst2"
    train_and_promote_text(isolated_state / "text-champion", name)
    return name
