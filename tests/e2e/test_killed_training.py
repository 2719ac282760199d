"""A training run killed (`kill -9`) at any point never moves the champion: the promoted
version stays champion, what the killed run left cannot be promoted by mistake, and the
next run trains, registers and promotes normally."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from application.registry.lifecycle import promote
from infrastructure.config.job_config import load_tabular_job
from shared.errors import MlopsError
from tests.conftest import REPO_ROOT
from tests.support.serving import train_and_promote, write_iris_config

pytestmark = pytest.mark.slow

MODEL = "killed-iris"


def _count(home: Path, table: str) -> int:
    try:
        with sqlite3.connect(home / "mlflow.db", timeout=5) as db:
            return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # locked or mid-migration: ask again
        return -1


def _stored() -> int:
    folder = Path(os.environ["BENTOML_HOME"]) / "models" / MODEL
    return sum(1 for p in folder.iterdir() if p.is_dir()) if folder.exists() else 0


# Where to kill the run, as what it has done so far: a new MLflow run started (the
# candidate being fitted), a new registered version, a new model in the BentoML store.
KILL_WHEN: dict[str, Callable[[Path, dict[str, int]], bool]] = {
    "fitting": lambda home, before: _count(home, "runs") > before["runs"],
    "registered": lambda home, before: _count(home, "model_versions") > before["versions"],
    "storing": lambda home, before: _stored() > before["stored"],
}


def _train_and_kill(home: Path, config: Path, when: str) -> None:
    """`mlops train` in a subprocess on the same stores, SIGKILLed as soon as ``when``."""
    executable = shutil.which("mlops", path=str(Path(sys.executable).parent))
    assert executable, "the mlops console script is installed by make install"
    env = {**os.environ, "MLOPS_HOME": str(home), "MLOPS_BENTOML_HOME": os.environ["BENTOML_HOME"]}
    before = {
        "runs": _count(home, "runs"),
        "versions": _count(home, "model_versions"),
        "stored": _stored(),
    }
    process = subprocess.Popen(
        [executable, "train", str(config)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not KILL_WHEN[when](home, before):
        assert process.poll() is None, f"the run ended before {when!r} was seen"
        assert time.monotonic() < deadline, f"{when!r} never happened"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def test_a_killed_training_run_never_moves_the_champion(tmp_path: Path) -> None:
    home = tmp_path / "state"
    container = train_and_promote(home, MODEL)
    config = write_iris_config(home, MODEL)

    def champion() -> str:
        info = container.registry.get_by_alias(MODEL, "champion")
        assert info is not None
        return info.version

    assert champion() == "1" and container.store.tag_for_alias(MODEL, "champion")
    first_tag = container.store.tag_for_alias(MODEL, "champion")
    for when in KILL_WHEN:  # one home, killed at each point in turn
        _train_and_kill(home, config, when)
        assert champion() == "1", f"the champion moved after a run killed while {when}"
        assert container.store.tag_for_alias(MODEL, "champion") == first_tag

    # What the killed runs left cannot be promoted by mistake: promote refuses (no model
    # in the BentoML store for the newest challenger) or promotes a complete version.
    try:
        promote(container.registry, container.store, MODEL)
        assert container.store.tag_for_alias(MODEL, "champion") != first_tag
    except MlopsError:
        assert champion() == "1"

    outcome = container.run_tabular_training(load_tabular_job(config))
    assert outcome.gate.passed
    promote(container.registry, container.store, MODEL)
    assert champion() == outcome.registered.version
    assert container.store.find_tag(MODEL, champion()) == container.store.tag_for_alias(
        MODEL, "champion"
    )
