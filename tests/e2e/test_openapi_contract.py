"""Both services keep the promise of their OpenAPI document (`/docs.json`).

Schemathesis runs every check it has (`--checks all`) against a real `bentoml serve`: every
status is declared, every body matches its schema, schema-valid requests are accepted,
schema-invalid ones are rejected with a 4xx, and nothing answers 5xx. Seeded and bounded, so
a run is repeatable; raise ``MLOPS_SCHEMATHESIS_EXAMPLES`` for a deeper look.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from domain.security.api_keys import Role
from infrastructure.security.json_key_store import JsonKeyStore
from tests.e2e.test_text_bento_serve import _wait_ready
from tests.support.datasets import write_mixed_csv
from tests.support.server import bentoml_server
from tests.support.serving import train_and_promote

pytestmark = [pytest.mark.slow, pytest.mark.serve]

TABULAR_SERVICE = "infrastructure.serving.entrypoints.tabular:TabularClassifier"
TEXT_SERVICE = "infrastructure.serving.entrypoints.text:TextClassifier"
EXAMPLES = os.environ.get("MLOPS_SCHEMATHESIS_EXAMPLES", "40")


def _admin_key(folder: Path) -> tuple[Path, str]:
    """A key file with one admin key, so the admin operations are exercised too (and
    schemathesis checks that they refuse requests without it)."""
    keys = folder / "api_keys.json"
    _, token = JsonKeyStore(keys).create("schemathesis", Role.ADMIN)
    return keys, token


def _schemathesis(url: str, workdir: Path, token: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is in the dev extra"
    return subprocess.run(
        [
            executable,
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{url}/docs.json",
            "--checks",
            "all",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "20261126",
            "--generation-database",
            "none",
            "--no-color",
            "--header",
            f"Authorization: Bearer {token}",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _assert_contract_kept(url: str, tmp_path: Path, log: Path, token: str) -> None:
    document = httpx.get(f"{url}/docs.json", timeout=10).json()
    assert document["openapi"].startswith("3.1")
    run = _schemathesis(url, tmp_path, token)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert " passed" in output and "failed" not in output, output
    served = log.read_text()
    assert "Traceback" not in served and "[ERROR]" not in served, served


def test_tabular_service_with_categories_and_gaps_keeps_its_openapi_contract(
    tmp_path: Path,
) -> None:
    write_mixed_csv(tmp_path / "customers.csv")
    train_and_promote(
        tmp_path / "state",
        "contract-churn",
        dataset={"source": str(tmp_path / "customers.csv"), "target": "churn"},
        gate={"metric": "accuracy", "threshold": 0.7},
    )
    keys, token = _admin_key(tmp_path)
    env = {"MLOPS_SERVE_MODEL_NAME": "contract-churn", "MLOPS_SERVE_API_KEYS_FILE": str(keys)}
    log = tmp_path / "serve.log"
    with bentoml_server(TABULAR_SERVICE, env, log) as url:
        _wait_ready(url)
        _assert_contract_kept(url, tmp_path, log, token)


def test_text_service_keeps_its_openapi_contract(tmp_path: Path, text_champion: str) -> None:
    keys, token = _admin_key(tmp_path)
    env = {
        "MLOPS_TEXT_SERVE_MODEL_NAME": text_champion,
        "MLOPS_TEXT_SERVE_API_KEYS_FILE": str(keys),
    }
    log = tmp_path / "serve.log"
    with bentoml_server(TEXT_SERVICE, env, log) as url:
        _wait_ready(url)
        _assert_contract_kept(url, tmp_path, log, token)
