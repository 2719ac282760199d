"""The README's main job, run as a user runs it: the `mlops` console script in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _mlops(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("mlops", path=str(Path(sys.executable).parent))
    assert executable, "the mlops console script is installed by make install"
    env = {**os.environ, "MLOPS_HOME": str(home), "COLUMNS": "200"}
    env.pop("BENTOML_HOME", None)
    env.pop("MLOPS_BENTOML_HOME", None)
    return subprocess.run(
        [executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_train_validate_promote_iris_as_a_user(tmp_path: Path) -> None:
    home = tmp_path / "state"
    trained = _mlops("train", "configs/iris.yaml", home=home)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "gate PASSED" in trained.stdout
    assert "Traceback" not in trained.stderr

    assert _mlops("validate", "iris-classifier", "--alias", "challenger", home=home).returncode == 0
    promoted = _mlops("promote", "iris-classifier", home=home)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    listing = _mlops("models", "iris-classifier", home=home)
    assert "champion" in listing.stdout
    # Everything stayed inside MLOPS_HOME: the project-local BentoML store holds the model.
    assert any((home / "bentoml" / "models" / "iris-classifier").iterdir())
    assert (home / "mlflow.db").is_file()

    bad = _mlops("train", "configs/does-not-exist.yaml", home=home)
    assert bad.returncode == 2 and "config file not found" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
