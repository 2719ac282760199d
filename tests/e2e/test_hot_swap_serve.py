"""A running `bentoml serve` with two workers follows a promotion without a restart (every
worker swaps, as `mlops_model_info` shows per worker), and a rollback back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from application.registry.lifecycle import promote, rollback
from infrastructure.config.job_config import load_tabular_job
from tests.e2e.test_text_bento_serve import _wait_ready
from tests.support.server import bentoml_server
from tests.support.serving import train_and_promote, write_iris_config

pytestmark = [pytest.mark.slow, pytest.mark.serve]

MODEL = "hot-swap-iris"
SERVICE = "infrastructure.serving.entrypoints.tabular:TabularClassifier"


def _versions_until(url: str, wanted: str, timeout_s: float = 60.0) -> set[str]:
    """Asks until every answer comes from ``wanted``; returns every version seen."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reply = httpx.post(f"{url}/classify", json={"rows": [[5.1, 3.5, 1.4, 0.2]]}, timeout=10)
        if reply.status_code == 503 and "still loading" in reply.text:
            # /readyz answered from a worker that was ready; another is still loading and
            # says so (503 with Retry-After), as it would to a load balancer.
            time.sleep(0.2)
            continue
        assert reply.status_code == 200, reply.text
        version = reply.json()[0]["model_version"]
        seen.add(version)
        if version == wanted:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"still not serving {wanted} after {timeout_s}s: {seen}")


def _workers_serving(url: str, version: str) -> int:
    """Worker samples of `mlops_model_info` that say the champion is ``version``."""
    lines = httpx.get(f"{url}/metrics", timeout=10).text.splitlines()
    return sum(
        1
        for line in lines
        if line.startswith("mlops_model_info{")
        and 'variant="champion"' in line
        and f'version="{version}"' in line
        and float(line.rsplit(" ", 1)[1]) == 1.0
    )


def _until_every_worker_serves(
    url: str, version: str, workers: int, timeout_s: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while _workers_serving(url, version) < workers:
        assert time.monotonic() < deadline, f"not every worker serves v{version}"
        time.sleep(0.2)


def test_the_served_champion_follows_promotion_and_rollback(tmp_path: Path) -> None:
    container = train_and_promote(tmp_path / "state", MODEL)
    env = {
        "MLOPS_SERVE_MODEL_NAME": MODEL,
        "MLOPS_SERVE_RELOAD_INTERVAL_S": "1",
        "MLOPS_SERVE_WORKERS": "2",
    }
    log = tmp_path / "serve.log"
    with bentoml_server(SERVICE, env, log) as url:
        _wait_ready(url)
        assert _versions_until(url, "1") == {"1"}
        config = write_iris_config(tmp_path / "state", MODEL)
        second = container.run_tabular_training(load_tabular_job(config)).registered.version
        promote(container.registry, container.store, MODEL)

        assert _versions_until(url, str(second)) <= {"1", str(second)}
        _until_every_worker_serves(url, str(second), workers=2)
        rollback(container.registry, container.store, MODEL)
        assert _versions_until(url, "1") <= {"1", str(second)}
        _until_every_worker_serves(url, "1", workers=2)
        stats = httpx.post(f"{url}/stats", timeout=10).json()
        failures = [line for line in log.read_text().splitlines() if "could not load" in line]
        assert stats["swaps"] >= 3 and stats["reload_failures"] == 0, failures
    served = log.read_text()
    assert "Traceback" not in served and "[ERROR]" not in served, served
