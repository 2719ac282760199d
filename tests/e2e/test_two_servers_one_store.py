"""Two `mlops serve` on one BentoML store (what `make serve` starts): the server started
second leaves the first one's metrics alone. With plain `bentoml serve` it emptied the
shared metrics folder, and the first server's counters fell back to 0."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from infrastructure.serving.launch import METRICS_FOLDER_PREFIX
from tests.e2e.test_text_bento_serve import _wait_ready
from tests.support.server import bentoml_server
from tests.support.serving import train_and_promote

pytestmark = [pytest.mark.slow, pytest.mark.serve]

MODEL = "two-servers-iris"
SERVICE = "infrastructure.serving.entrypoints.tabular:TabularClassifier"
ROW = {"rows": [[5.1, 3.5, 1.4, 0.2]]}


def _predictions(url: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines()
        if line.startswith("mlops_predictions_total{") and f'model="{MODEL}"' in line
    )


def test_the_second_server_leaves_the_first_ones_metrics(tmp_path: Path) -> None:
    train_and_promote(tmp_path / "state", MODEL)
    env = {"MLOPS_SERVE_MODEL_NAME": MODEL}
    home = Path(os.environ["BENTOML_HOME"])
    with bentoml_server(SERVICE, env, tmp_path / "first.log") as first:
        _wait_ready(first, 240)
        for _ in range(3):
            assert httpx.post(f"{first}/classify", json=ROW, timeout=30).status_code == 200
        assert _predictions(first) == 3
        with bentoml_server(SERVICE, env, tmp_path / "second.log") as second:
            _wait_ready(second, 240)
            assert httpx.post(f"{second}/classify", json=ROW, timeout=30).status_code == 200
            assert httpx.post(f"{first}/classify", json=ROW, timeout=30).status_code == 200
            assert _predictions(first) == 4, (tmp_path / "first.log").read_text()[-3000:]
            assert _predictions(second) == 1
            assert len(list(home.glob(f"{METRICS_FOLDER_PREFIX}*"))) == 2
    assert not list(home.glob(f"{METRICS_FOLDER_PREFIX}*")), "each server removes its folder"
