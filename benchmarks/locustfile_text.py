"""Load against a running text service (loopback): `make load-text` runs it headless, bounded.

    locust -f benchmarks/locustfile_text.py --headless -u 64 -r 16 -t 60s \\
        --host http://127.0.0.1:3001

Each user sends one SST-2 sentence (GLUE validation set, shipped in data/sst2/) per
`classify` request, so concurrent users are what forms adaptive batches: watch
`mlops_batch_size` on /metrics. A share of requests send feedback with
the sentence's true label so the rolling-accuracy gauge moves too.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, task

LABELS = {"0": "negative", "1": "positive"}


def _sentences() -> list[tuple[str, str]]:
    path = Path(__file__).resolve().parents[1] / "data" / "sst2" / "test.tsv"
    with path.open(newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(row["sentence"].strip(), LABELS[row["label"]]) for row in rows]


SENTENCES = _sentences()


class TextClient(FastHttpUser):
    wait_time = between(0.0, 0.01)

    @task(8)
    def classify(self) -> None:
        text, label = random.choice(SENTENCES)
        with self.client.post("/classify", json={"texts": [text]}, catch_response=True) as reply:
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
        text, _ = random.choice(SENTENCES)
        self.client.post("/predict", json={"text": text})

    @task(1)
    def stats(self) -> None:
        self.client.post("/stats")
