"""Benchmark set-up shared by the serving benchmarks: tools, stores and a served champion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    """A console script of this project's environment (bentoml, mlops, mlflow, ...)."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is not installed; run `make install`")
    return path


def use_stores(home: Path) -> dict[str, str]:
    """Point this process and its servers at ``home``'s MLflow and BentoML stores."""
    env = {
        "MLOPS_HOME": str(home),
        "MLOPS_BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        # mlflow.set_registry_uri() exports this; inherited from a caller that used another
        # store (a test session), it made MlflowClient read a registry other than ``home``'s.
        "MLFLOW_REGISTRY_URI": f"sqlite:///{home / 'mlflow.db'}",
        "PYTHONPATH": os.pathsep.join(
            part for part in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if part
        ),
        # mlflow starts `uvicorn` by name: the venv's scripts must be on PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # BentoML reads BENTOML_HOME once, on first use: set before anything imports it.
    os.environ.update(env)
    return env


def ensure_champion(model: str, config: str) -> None:
    """Train ``config`` and promote ``model`` unless it already has a champion."""
    listing = subprocess.run(
        [tool("mlops"), "models", model], capture_output=True, text=True, check=False
    )
    if "champion" in listing.stdout:
        return
    for command in (["train", config], ["promote", model]):
        subprocess.run([tool("mlops"), *command], cwd=REPO_ROOT, check=True)


def champion_tag(model: str, home: Path) -> tuple[str, str]:
    """(registered champion version, BentoML tag) read from ``home``'s stores."""
    from mlflow.tracking import MlflowClient

    from infrastructure.store.bento_model_store import BentoModelStore

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = str(client.get_model_version_by_alias(model, "champion").version)
    tag = BentoModelStore().find_tag(model, version)
    if tag is None:
        raise SystemExit(f"no BentoML model for {model} v{version} under {home}")
    return version, tag
