"""Serving v2 through a real service (``to_asgi()``): hot swap under load, a rejected
version, the challenger's sticky share and its own accuracy, runtime traffic changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import binomtest
from starlette.testclient import TestClient

from application.registry.lifecycle import promote
from infrastructure.bootstrap import Container
from infrastructure.config.job_config import load_tabular_job
from tests.support.serving import (
    asgi_client,
    metric_total,
    tabular_service,
    train_and_promote,
    variant_stats,
    write_iris_config,
)

pytestmark = pytest.mark.slow

MODEL = "lifecycle-iris"
SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lifecycle")


@pytest.fixture(scope="module")
def container(home: Path) -> Container:
    return train_and_promote(home, MODEL)


@pytest.fixture(scope="module")
def client(container: Container) -> Iterator[TestClient]:
    # No watcher: each test moves the aliases and asks for a reload itself.
    # A generous latency bound: these tests are about swaps, and on a loaded 2-core CI
    # machine a reload's load and collection can outlast the default 1 s (a 503 by design).
    service = tabular_service(
        model_name=MODEL,
        reload_interval_s=0,
        challenger_alias="challenger",
        max_latency_ms=30_000,
    )
    with asgi_client(service) as test_client:
        yield test_client


def _train_next(home: Path, container: Container, **overrides: Any) -> str:
    """A new version of MODEL, registered as challenger (training never moves champion)."""
    outcome = container.run_tabular_training(
        load_tabular_job(write_iris_config(home, MODEL, **overrides))
    )
    return str(outcome.registered.version)


def _classify(client: TestClient, key: str) -> dict[str, Any]:
    response = client.post("/classify", json={"rows": [SETOSA]}, headers={"x-routing-key": key})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()[0]
    assert response.headers["x-model-version"] == answer["model_version"]
    return answer


def test_promotion_is_served_without_a_restart_and_no_request_fails(
    client: TestClient, container: Container, home: Path
) -> None:
    assert _classify(client, "a")["model_version"] == "1"
    new_version = _train_next(home, container)
    # The new version is the challenger at weight 0: loaded next to the champion, no traffic.
    assert client.post("/admin/reload").json()["variants"][1]["outcome"] == "loaded"
    assert {_classify(client, f"k{i}")["variant"] for i in range(20)} == {"champion"}

    promote(container.registry, container.store, MODEL)

    def ask(i: int) -> tuple[int, str]:
        reply = client.post("/classify", json={"rows": [SETOSA] * (1 + i % 3)})
        versions = (
            {row["model_version"] for row in reply.json()} if reply.status_code == 200 else set()
        )
        assert len(versions) <= 1, "one request, one version"
        return reply.status_code, versions.pop() if versions else ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        during = pool.map(ask, range(200))
        report = client.post("/admin/reload").json()
        answers = list(during)
    assert {status for status, _ in answers} == {200}, "no request failed during the swap"
    assert {version for _, version in answers} <= {"1", new_version}
    champion = next(v for v in report["variants"] if v["variant"] == "champion")
    assert champion["outcome"] == "swapped" and champion["serving"] == champion["target"]
    assert {_classify(client, f"z{i}")["model_version"] for i in range(10)} == {new_version}
    served = metric_total(
        client, "mlops_model_info", model=MODEL, variant="champion", version=new_version
    )
    assert served == 1.0
    assert (
        metric_total(client, "mlops_model_info", model=MODEL, variant="champion", version="1")
        == 0.0
    )


def test_an_incompatible_version_is_refused_and_the_old_one_keeps_serving(
    client: TestClient, container: Container, home: Path
) -> None:
    serving = _classify(client, "a")["model_version"]
    failures = metric_total(
        client, "mlops_model_reload_failures_total", model=MODEL, variant="champion"
    )
    # Two features instead of four: requests shaped for the service would not fit it.
    bad = _train_next(
        home,
        container,
        dataset={"source": "iris", "numeric_features": ["sepal_length_cm", "petal_length_cm"]},
    )
    container.registry.set_alias(MODEL, "champion", bad)
    container.store.mark_alias(MODEL, "champion", bad)

    report = client.post("/admin/reload").json()

    champion = next(v for v in report["variants"] if v["variant"] == "champion")
    assert champion["outcome"] == "failed" and "request schema differs" in champion["error"]
    assert _classify(client, "a")["model_version"] == serving
    stats = client.post("/stats").json()
    assert (
        stats["reload_failures"] >= 1 and stats["last_reload"]["variants"][0]["outcome"] == "failed"
    )
    after = metric_total(
        client, "mlops_model_reload_failures_total", model=MODEL, variant="champion"
    )
    assert after == failures + 1
    # Put the alias back so the next tests start from the version that serves.
    container.registry.set_alias(MODEL, "champion", serving)
    container.store.mark_alias(MODEL, "champion", serving)


def test_a_challenger_gets_its_sticky_share_and_its_own_accuracy(
    client: TestClient, container: Container, home: Path
) -> None:
    challenger = _train_next(
        home, container, candidates=[{"estimator": "random_forest", "params": {"n_estimators": 10}}]
    )
    client.post("/admin/reload")
    traffic = client.post("/admin/traffic", json={"challenger_weight": 20})
    assert traffic.status_code == 200 and traffic.json()["serving"]["challenger"] == challenger

    keys = [f"user-{i}" for i in range(400)]
    first = {key: _classify(client, key) for key in keys}
    again = {key: _classify(client, key)["variant"] for key in keys[:100]}
    assert all(first[key]["variant"] == again[key] for key in again), "sticky per key"
    shares = Counter(answer["variant"] for answer in first.values())
    assert binomtest(shares["challenger"], len(keys), 0.2).pvalue > 0.001, shares

    for answer in first.values():
        client.post("/feedback", json={"request_id": answer["request_id"], "label": "setosa"})
    challenger_stats = variant_stats(client, "challenger")
    champion_stats = variant_stats(client, "champion")
    assert challenger_stats["labelled"] == shares["challenger"]
    assert champion_stats["labelled"] >= shares["champion"]
    assert (
        metric_total(client, "mlops_rolling_accuracy", model=MODEL, variant="challenger")
        == challenger_stats["rolling_accuracy"]
    )

    bad = client.post("/admin/traffic", json={"challenger_weight": 120})
    assert bad.status_code == 400 and bad.json()["detail"][0]["loc"] == ["challenger_weight"]
    assert (
        client.post("/admin/traffic", json={"challenger_weight": 0}).json()["challenger_weight"]
        == 0
    )
