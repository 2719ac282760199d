"""`bentoml build` from bentofile.yaml, then `bentoml serve` of that Bento on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bentoml
import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.support.server import bentoml_server, build_bento
from tests.support.serving import train_and_promote

pytestmark = [pytest.mark.slow, pytest.mark.serve]

MODEL = "serve-e2e-iris"
SETOSA = [5.1, 3.5, 1.4, 0.2]


def test_built_bento_serves_predictions_metrics_and_rejects_bad_input(tmp_path: Path) -> None:
    train_and_promote(tmp_path / "state", MODEL)
    env = {"MLOPS_SERVE_MODEL_NAME": MODEL}
    tag = build_bento(env)
    bento_dir = Path(bentoml.get(tag).path)
    sources = {
        p.relative_to(bento_dir / "src").as_posix() for p in (bento_dir / "src").rglob("*.py")
    }
    assert "infrastructure/serving/tabular_service.py" in sources
    assert not any(s.startswith(("tests/", "application/training/")) for s in sources)

    with bentoml_server(tag, env, tmp_path / "serve.log") as url:
        with bentoml.SyncHTTPClient(url, server_ready_timeout=90) as client:
            rows = client.classify(rows=[SETOSA, [6.7, 3.0, 5.2, 2.3]])
            assert [row["label"] for row in rows] == ["setosa", "virginica"]
            meta = client.metadata()
            assert meta["model_name"] == MODEL and meta["alias"] == "champion"
        bad = httpx.post(f"{url}/classify", json={"rows": [[1.0, "x", 2.0, 3.0]]}, timeout=10)
        assert bad.status_code == 400 and "valid number" in bad.text
        named = httpx.post(
            f"{url}/predict",
            json={
                "sepal_length_cm": 5.1,
                "sepal_width_cm": 3.5,
                "petal_length_cm": 1.4,
                "petal_width_cm": 0.2,
            },
            timeout=10,
        )
        assert named.status_code == 200, named.text
        # The Bento carries the web UI's files (the browser test runs in test_web_ui.py).
        for page in ("/ui/", "/ui/app.js", "/ui/vendor/uPlot.iife.min.js"):
            assert httpx.get(f"{url}{page}", timeout=10).status_code == 200, page
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert (
            f'mlops_predictions_total{{class="setosa",endpoint="classify",model="{MODEL}"'
            in metrics
        )
        assert "mlops_request_errors_total" in metrics

        locust = subprocess.run(
            [
                str(Path(sys.executable).parent / "locust"),
                "-f",
                str(REPO_ROOT / "benchmarks" / "locustfile.py"),
                "--headless",
                "-u",
                "4",
                "-r",
                "4",
                "-t",
                "4s",
                "--only-summary",
                "--host",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert locust.returncode == 0, locust.stdout + locust.stderr
        assert "/classify" in locust.stdout + locust.stderr
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log
