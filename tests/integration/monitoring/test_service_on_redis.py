"""A service configured with a Redis prediction log (a real redis-server) records its
predictions there, takes feedback from it, and reports stats from it; a second service
instance on the same Redis (another replica) sees the same figures and can label them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.serving import (
    asgi_client,
    tabular_service,
    train_and_promote,
    variant_stats,
)
from tests.support.system_tools import redis_server

pytestmark = pytest.mark.slow

MODEL = "redis-iris"
SETOSA = [5.1, 3.5, 1.4, 0.2]


def test_replicas_share_feedback_and_stats_through_redis(tmp_path: Path) -> None:
    train_and_promote(tmp_path / "state", MODEL)
    with redis_server(tmp_path / "redis") as url:
        first = tabular_service(model_name=MODEL, prediction_log_url=url)
        with asgi_client(first) as client:
            answers = client.post("/classify", json={"rows": [SETOSA] * 6}).json()
            assert client.post(
                "/feedback", json={"request_id": answers[0]["request_id"], "label": "setosa"}
            ).json()["correct"]
        second = tabular_service(model_name=MODEL, prediction_log_url=url)
        with asgi_client(second) as client:
            reply = client.post(
                "/feedback", json={"request_id": answers[1]["request_id"], "label": "versicolor"}
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["rolling_accuracy"] == 0.5, "both labels, both replicas"
            stats = variant_stats(client)
            assert (stats["predictions"], stats["labelled"]) == (6, 2)
            again = client.post(
                "/feedback", json={"request_id": answers[0]["request_id"], "label": "setosa"}
            )
            assert again.status_code == 404, "labelled once, on either replica"
