"""`bentoml build -f bentofile.text.yaml`, then `bentoml serve` of that Bento on 127.0.0.1.

Concurrent clients must form adaptive batches on the real server, /readyz must only turn
200 after warm-up, and the Bento's web UI must work in a real browser.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bentoml
import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import chromium, score_file_in_ui, wait_for
from tests.support.server import bentoml_server, build_bento

pytestmark = [pytest.mark.slow, pytest.mark.serve]

BATCH = re.compile(
    r'^mlops_batch_size_(sum|count)\{[^}]*variant="champion"[^}]*\}\s+(\S+)',
    re.MULTILINE,
)


def _wait_ready(url: str, timeout_s: float = 240.0) -> list[int]:
    """Generous: on two CI cores busy with other tests a server took over 120 s to start."""
    statuses: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{url}/readyz", timeout=5).status_code
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        statuses.append(status)
        if status == 200:
            return statuses
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout_s}s: {statuses[-5:]}")


def _web_ui_scores_texts(url: str, folder: Path, expected: dict[str, object]) -> None:
    """The Bento carries the web UI: a text box gives the API's answer, and a TSV's text
    column (named in the form) is scored as a batch job, its blank row rejected."""
    sentences = folder / "reviews.tsv"
    sentences.write_text("id\treview\n1\ta fine film .\n2\t   \n3\tdull and long .\n")
    with chromium(folder / "downloads") as driver:
        driver.get(f"{url}/ui/#predict")
        box = wait_for(lambda: driver.find_element(By.ID, "field-text"), 30, "the text box")
        box.send_keys("a fine film .")
        driver.find_element(By.ID, "predict-submit").click()
        label = wait_for(lambda: driver.find_element(By.ID, "answer-label").text, 30, "answer")
        assert label == expected["label"]
        driver.save_screenshot(str(folder / "text-predict.png"))

        _, cells = score_file_in_ui(driver, url, sentences, text_column="review")
        assert cells[3:5] == ["2", "1"], cells


def test_built_text_bento_batches_concurrent_requests(tmp_path: Path, text_champion: str) -> None:
    env = {"MLOPS_TEXT_SERVE_MODEL_NAME": text_champion}
    tag = build_bento(env, "-f", "bentofile.text.yaml")
    bento = bentoml.get(tag)
    assert bento.info.labels["kind"] == "text-classification"
    served_models = [model.tag.name for svc in bento.info.services for model in svc.models]
    assert served_models == [text_champion]
    sources = {
        p.relative_to(Path(bento.path) / "src").as_posix()
        for p in (Path(bento.path) / "src").rglob("*.py")
    }
    assert "infrastructure/serving/text_service.py" in sources
    assert "infrastructure/ml/text/trainer.py" not in sources

    with bentoml_server(tag, env, tmp_path / "serve.log") as url:
        _wait_ready(url)
        texts = [f"the film is {'good' if i % 2 else 'dull'} , take {i} ." for i in range(128)]
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(max_workers=32) as pool:
            replies = list(
                pool.map(lambda t: client.post(f"{url}/classify", json={"texts": [t]}), texts)
            )
        assert [r.status_code for r in replies] == [200] * len(texts)
        assert all(len(r.json()) == 1 for r in replies)

        totals = {"sum": 0.0, "count": 0.0}
        for kind, value in BATCH.findall(httpx.get(f"{url}/metrics", timeout=10).text):
            totals[kind] += float(value)
        assert totals["sum"] >= len(texts)
        assert totals["sum"] / totals["count"] > 1.5, f"batches did not form: {totals}"

        bad = httpx.post(f"{url}/classify", json={"texts": ["  "]}, timeout=10)
        assert bad.status_code == 400 and "blank" in bad.text
        single = httpx.post(f"{url}/predict", json={"text": "a fine film ."}, timeout=10)
        assert single.status_code == 200 and single.json()["model_name"] == text_champion
        serving = httpx.post(f"{url}/metadata", timeout=10).json()["serving"]
        assert serving["gil_switch_ms"] == 0.5, "the worker that holds the model switches often"
        _web_ui_scores_texts(url, tmp_path, single.json()["predictions"][0])
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log
