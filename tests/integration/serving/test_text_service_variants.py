"""Text service settings that change behaviour: warm-up gating, the cache, batching off.

Each test builds its own app, one after the other (BentoML apps share Prometheus state).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from tests.support.serving import asgi_client, batch_totals, text_service, variant_stats

pytestmark = pytest.mark.slow

TEXT = "an ugly , pointless , stupid movie ."


def _wait_ready(client: TestClient, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "warm-up did not finish"
        time.sleep(0.1)


def test_a_worker_takes_requests_only_once_warm(text_champion: str) -> None:
    # Startup (after which uvicorn accepts connections) waits for the first load and warm-up.
    service = text_service(model_name=text_champion, warmup_batch_sizes=(1, 8), warmup_rounds=4)
    with asgi_client(service, wait=False) as client:
        assert client.get("/readyz").status_code == 200, "startup ended before the load"
        assert client.post("/metadata").json()["warmup"]["ready"] is True


def test_readyz_is_503_until_warmup_is_done_once_the_startup_wait_lapses(
    text_champion: str,
) -> None:
    # Enough passes at the largest shape that warm-up visibly outlasts start-up; with no
    # startup wait the worker takes requests at once, and says it is not ready yet.
    service = text_service(
        model_name=text_champion,
        warmup_batch_sizes=(1, 64),
        warmup_rounds=12,
        startup_wait_s=0,
    )
    with asgi_client(service, wait=False) as client:
        first = client.get("/readyz")
        assert first.status_code == 503, "ready before warm-up finished"
        assert client.get("/livez").status_code == 200, "alive while warming up"
        _wait_ready(client)
        warmup = client.post("/metadata").json()["warmup"]
        assert warmup["ready"] is True and warmup["rounds"] == 12
        assert warmup["seconds"] > 0 and set(warmup["last_round_ms"]) == {"1", "64"}


def test_cache_answers_repeats_and_counts_hits_and_misses(text_champion: str) -> None:
    service = text_service(
        model_name=text_champion, cache=True, cache_size=100, warmup_batch_sizes=(1,)
    )
    with asgi_client(service) as client:
        _wait_ready(client)
        first = client.post("/classify", json={"texts": [TEXT, "a moving film ."]}).json()
        again = client.post("/classify", json={"texts": [f"  {TEXT} ", "new text ."]}).json()
        assert again[0]["probabilities"] == first[0]["probabilities"]
        assert again[0]["request_id"] != first[0]["request_id"], "each answer has its own id"
        stats = variant_stats(client)
        assert (stats["cache_hits"], stats["cache_misses"]) == (1, 3)
        assert stats["predictions"] == 4, "cached answers are predictions too"
        metrics = client.get("/metrics").text
        assert "mlops_cache_lookups_total{" in metrics and 'result="hit"' in metrics
        assert client.post("/metadata").json()["serving"]["cache"]["enabled"] is True


def test_batching_can_be_switched_off(text_champion: str) -> None:
    # One call per request means a queue: on a loaded 2-core CI machine 16 requests can wait
    # past the default 1 s bound (503 by design); this test is about batching, not the bound.
    service = text_service(
        model_name=text_champion, batching=False, warmup_batch_sizes=(1,), max_latency_ms=60_000
    )
    with asgi_client(service) as client:
        _wait_ready(client)
        before = batch_totals(client, text_champion)
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(
                pool.map(
                    lambda _: client.post("/classify", json={"texts": [TEXT, TEXT]}), range(16)
                )
            )
        assert [reply.status_code for reply in replies] == [200] * 16
        assert all(len(reply.json()) == 2 for reply in replies)
        after = batch_totals(client, text_champion)
        # The multiprocess metrics outlive earlier apps: compare with the totals before.
        assert (after[0] - before[0], after[1] - before[1]) == (32, 16), "one call per request"
        assert client.post("/metadata").json()["serving"]["batching"] is False
