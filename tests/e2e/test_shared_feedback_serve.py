"""Feedback and stats are shared by the workers of a real `bentoml serve` (two workers, the
default SQLite prediction log): feedback for 200 predictions is all attributed whichever
worker receives it, every worker's `stats` agree, and `kill -9` of a worker loses none of
the predictions or labels it recorded."""

from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from domain.monitoring.prediction_log import LogKey
from infrastructure.monitoring.prediction_logs import open_prediction_log
from tests.e2e.test_text_bento_serve import _wait_ready
from tests.support.server import bentoml_server
from tests.support.serving import train_and_promote

pytestmark = [pytest.mark.slow, pytest.mark.serve]

MODEL = "shared-log-iris"
SERVICE = "infrastructure.serving.entrypoints.tabular:TabularClassifier"
WORKER = re.compile(r'^mlops_model_info\{[^}]*worker="(\d+)"[^}]*\}\s+1\.0$', re.MULTILINE)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def _workers(url: str) -> set[int]:
    return {int(pid) for pid in WORKER.findall(httpx.get(f"{url}/metrics", timeout=10).text)}


def _predict(url: str, i: int) -> tuple[str, str]:
    # A worker can be listed (its model info is set when the version loads) a moment before
    # it turns ready; it answers 503 with Retry-After meanwhile, and a client retries.
    deadline = time.monotonic() + 30
    while True:
        reply = httpx.post(f"{url}/classify", json={"rows": [ROWS[i % 3]]}, timeout=30)
        if reply.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert reply.status_code == 200, reply.text
    answer = reply.json()[0]
    return answer["request_id"], answer["label"]


def _feedback(url: str, request_id: str, label: str) -> httpx.Response:
    # A new connection each time, so the kernel spreads them over both workers.
    return httpx.post(
        f"{url}/feedback", json={"request_id": request_id, "label": label}, timeout=30
    )


def test_feedback_and_stats_are_shared_and_survive_a_killed_worker(tmp_path: Path) -> None:
    home = tmp_path / "state"
    train_and_promote(home, MODEL)
    env = {"MLOPS_SERVE_MODEL_NAME": MODEL, "MLOPS_SERVE_WORKERS": "2"}
    log = tmp_path / "serve.log"
    with bentoml_server(SERVICE, env, log) as url:
        _wait_ready(url)
        # /readyz answers once one worker is ready; the other may still be loading (503).
        deadline = time.monotonic() + 60
        while len(_workers(url)) < 2:
            assert time.monotonic() < deadline, "two workers never both served"
            time.sleep(0.2)
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda i: _predict(url, i), range(200)))

        half = answers[:100]
        with ThreadPoolExecutor(max_workers=16) as pool:
            replies = list(pool.map(lambda a: _feedback(url, a[0], a[1]), half))
        assert [r.status_code for r in replies] == [200] * len(half), replies[0].text
        assert all(r.json()["correct"] and r.json()["variant"] == "champion" for r in replies)

        before = _workers(url)
        os.kill(max(before), signal.SIGKILL)
        # BentoML starts a new worker; it reports its own pid once its model is loaded.
        deadline = time.monotonic() + 90
        while not (_workers(url) - before):
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)

        rest = answers[100:]
        with ThreadPoolExecutor(max_workers=16) as pool:
            replies = list(pool.map(lambda a: _feedback(url, a[0], a[1]), rest))
        assert [r.status_code for r in replies] == [200] * len(rest), replies[0].text
        again = _feedback(url, answers[0][0], answers[0][1])
        assert again.status_code == 404, "a request is labelled once, whichever worker asks"

        for _ in range(4):  # several connections: whichever worker answers, the same figures
            stats = httpx.post(f"{url}/stats", timeout=30).json()
            champion = next(v for v in stats["variants"] if v["variant"] == "champion")["stats"]
            assert champion["labelled"] == 200 and champion["rolling_accuracy"] == 1.0
            assert champion["predictions"] >= 200
    store = open_prediction_log("", Path(os.environ["MLOPS_HOME"]))
    labelled = store.recent_labelled(LogKey(MODEL, "champion", "1"), 1000)
    assert len(labelled) == 200
    assert {r.request_id for r in labelled} == {request_id for request_id, _ in answers}
    served = log.read_text()
    assert "Traceback" not in served, served
