"""Load against a running tabular service (loopback): `make load` runs it headless, bounded.

    locust -f benchmarks/locustfile.py --headless -u 32 -r 8 -t 60s --host http://127.0.0.1:3000

Rows are drawn around the iris class means, so the traffic looks like training data; a share
of requests send feedback with the true class so the rolling-accuracy gauge moves too.
Set MLOPS_LOAD_SHIFT=3 to add 3 to the first feature and watch the drift gauges react.
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import FastHttpUser, between, task

CLASS_MEANS = {
    "setosa": (5.0, 3.4, 1.5, 0.25),
    "versicolor": (5.9, 2.8, 4.3, 1.3),
    "virginica": (6.6, 3.0, 5.6, 2.0),
}
FEATURES = ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm")
SHIFT = float(os.environ.get("MLOPS_LOAD_SHIFT", "0"))


def _sample() -> tuple[str, list[float]]:
    label = random.choice(list(CLASS_MEANS))
    row = [round(random.gauss(mean, 0.2), 2) for mean in CLASS_MEANS[label]]
    row[0] += SHIFT
    return label, row


class TabularClient(FastHttpUser):
    wait_time = between(0.0, 0.01)

    @task(8)
    def classify(self) -> None:
        label, row = _sample()
        with self.client.post("/classify", json={"rows": [row]}, catch_response=True) as reply:
            body: Any = reply.json() if reply.status_code == 200 else None
            if not body:
                reply.failure(f"status {reply.status_code}")
                return
            if random.random() < 0.2:
                self.client.post(
                    "/feedback", json={"request_id": body[0]["request_id"], "label": label}
                )

    @task(2)
    def predict(self) -> None:
        _, row = _sample()
        self.client.post("/predict", json=dict(zip(FEATURES, row, strict=True)))

    @task(1)
    def stats(self) -> None:
        self.client.post("/stats")
