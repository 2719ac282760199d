"""bentofile.yaml builds offline and pins what poetry.lock pins."""

from __future__ import annotations

import yaml

from infrastructure.dependencies.lock_constraints import read_lock, version_of
from tests.conftest import REPO_ROOT


def test_bentofile_is_offline_and_matches_the_lock() -> None:
    bentofile = yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())
    assert bentofile["python"]["lock_packages"] is False
    locked = read_lock(REPO_ROOT / "poetry.lock")
    for requirement in bentofile["python"]["packages"]:
        name, version = requirement.split("==")
        assert version_of(locked, name) == version, f"{name}: bentofile {version} != lock"
    assert "tests/" in bentofile["exclude"]
