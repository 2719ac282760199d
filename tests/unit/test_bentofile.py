"""The bentofiles build offline and pin what poetry.lock pins."""

from __future__ import annotations

import pytest
import yaml

from infrastructure.dependencies.lock_constraints import read_lock, version_of
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("name", ["bentofile.yaml", "bentofile.text.yaml"])
def test_bentofile_is_offline_and_matches_the_lock(name: str) -> None:
    bentofile = yaml.safe_load((REPO_ROOT / name).read_text())
    assert bentofile["python"]["lock_packages"] is False
    locked = read_lock(REPO_ROOT / "poetry.lock")
    for requirement in bentofile["python"]["packages"]:
        package, version = requirement.split("==")
        assert version_of(locked, package) == version, f"{package}: {name} {version} != lock"
    assert "tests/" in bentofile["exclude"]
    assert "application/training/" in bentofile["exclude"]
    module, _ = bentofile["service"].split(":")
    assert (REPO_ROOT / (module.replace(".", "/") + ".py")).is_file()
