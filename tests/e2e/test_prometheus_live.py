"""A real Prometheus (Debian's package) on 127.0.0.1 scrapes a real `bentoml serve` of both
services under a short load, with the project's rules loaded. Every Grafana panel query
returns data, every alert expression parses and evaluates, and every `mlops_*` family the
dashboards and rules read exists on the services' /metrics."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.e2e.test_text_bento_serve import _wait_ready
from tests.support.server import bentoml_server
from tests.support.serving import train_and_promote
from tests.support.system_tools import free_port, require_tool

pytestmark = [pytest.mark.slow, pytest.mark.serve]

DASHBOARDS = REPO_ROOT / "deploy" / "grafana" / "dashboards"
RULES = REPO_ROOT / "deploy" / "prometheus" / "rules"
JOBS = ("bento-tabular", "bento-text")
# Panels whose query may rightly be empty on a healthy service: nothing is firing.
MAY_BE_EMPTY = {"Alerts firing"}
IRIS = "prom-iris"


@contextmanager
def prometheus(targets: dict[str, str], folder: Path) -> Iterator[str]:
    binary = require_tool("prometheus", "prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted(RULES.glob("*.yml"))],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [binary, f"--config.file={folder / 'prometheus.yml'}"]
    command += [f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    with (folder / "prometheus.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, (folder / "prometheus.log").read_text()
                assert time.monotonic() < deadline, "prometheus not ready in 30 s"
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(20)


def query(prometheus_url: str, expr: str) -> list[Any]:
    reply = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=30)
    body = reply.json()
    assert reply.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


def _panels_without_data(url: str) -> list[str]:
    empty = []
    for title, expr in panel_queries():
        assert "$job" in expr or "ALERTS" in expr, f"{title}: not filtered by service"
        results = [
            query(url, expr.replace("$job", job).replace("$__rate_interval", "30s")) for job in JOBS
        ]
        if not any(results) and title not in MAY_BE_EMPTY:
            empty.append(f"{title}: {expr}")
    return empty


def load(tabular: str, text: str) -> None:
    """Predictions (some with a gap), bad requests, feedback, cached texts."""
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, None, 4.2, 1.5]]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda i: httpx.post(
                    f"{tabular}/classify", json={"rows": [rows[i % 3]] * 4}, timeout=30
                ),
                range(60),
            )
        )
        texts = list(
            pool.map(
                lambda i: httpx.post(
                    f"{text}/classify",
                    json={"texts": [f"a fine film , take {i % 20} ."]},
                    timeout=30,
                ),
                range(80),
            )
        )
    assert all(r.status_code == 200 for r in answers + texts)
    for base, replies in ((tabular, answers[:30]), (text, texts[:30])):
        for reply in replies:
            first = reply.json()[0]
            feedback = {"request_id": first["request_id"], "label": first["label"]}
            assert httpx.post(f"{base}/feedback", json=feedback, timeout=30).status_code == 200
        assert httpx.post(f"{base}/classify", json={"nope": 1}, timeout=30).status_code == 400


def panel_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found += [(panel["title"], target["expr"]) for target in panel["targets"]]
    return found


def alert_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [(r.get("alert") or r["record"], r["expr"]) for r in group["rules"]]
    return found


def families(text: str) -> set[str]:
    names = set()
    for name in re.findall(r"\b(mlops_[a-z_]+)", text):
        names.add(re.sub(r"_(total|bucket|count|sum)$", "", name))
    return names


def test_dashboards_and_rules_work_against_live_prometheus(
    tmp_path: Path, text_champion: str
) -> None:
    train_and_promote(tmp_path / "state", IRIS)
    with ExitStack() as stack:
        tabular = stack.enter_context(
            bentoml_server(
                "infrastructure.serving.entrypoints.tabular:TabularClassifier",
                {"MLOPS_SERVE_MODEL_NAME": IRIS, "MLOPS_SERVE_DRIFT_EVERY": "20"},
                tmp_path / "tabular.log",
            )
        )
        text = stack.enter_context(
            bentoml_server(
                "infrastructure.serving.entrypoints.text:TextClassifier",
                {
                    "MLOPS_TEXT_SERVE_MODEL_NAME": text_champion,
                    "MLOPS_TEXT_SERVE_CACHE": "true",
                    "MLOPS_TEXT_SERVE_DRIFT_EVERY": "20",
                    "MLOPS_TEXT_SERVE_WARMUP_BATCH_SIZES": "[1,8]",
                },
                tmp_path / "text.log",
            )
        )
        _wait_ready(tabular)
        _wait_ready(text)
        targets = {JOBS[0]: tabular.removeprefix("http://"), JOBS[1]: text.removeprefix("http://")}
        url = stack.enter_context(prometheus(targets, tmp_path / "prometheus"))
        load(tabular, text)
        time.sleep(4)  # a few scrapes and rule evaluations after the load
        # A rate needs two scrapes after a counter moved; on a busy machine a 1 s scrape can
        # time out, so load again (up to a bound) until every panel has data.
        deadline = time.monotonic() + 60
        while True:
            load(tabular, text)
            time.sleep(4)
            empty = _panels_without_data(url)
            if not empty or time.monotonic() > deadline:
                break
        assert not empty, "panels without data:\n" + "\n".join(empty)

        exposed = families(httpx.get(f"{tabular}/metrics").text) | families(
            httpx.get(f"{text}/metrics").text
        )
        for _, expr in alert_expressions():
            query(url, expr)  # parses and evaluates (most are rightly empty)
        assert query(url, "mlops:requests:rate5m"), "recording rules evaluated"
        assert query(url, "mlops:request_errors:ratio_rate5m"), "0 while nothing fails"

        used = set()
        for _, expr in panel_queries() + alert_expressions():
            used |= families(expr)
        missing = used - exposed
        assert not missing, f"families read by dashboards/rules but not on /metrics: {missing}"
