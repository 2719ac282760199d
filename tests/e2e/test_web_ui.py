"""The web UI at /ui in headless Chromium against a real `bentoml serve` that needs API keys:
predict from the generated form (a bad field named, then an answer), feedback, a CSV with
bad rows scored as a batch job and both files downloaded, the monitor charts drawn under
traffic, and the registry's versions and runs. Screenshots go to benchmarks/results/ui/."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from domain.security.api_keys import Role
from infrastructure.ml.dataset_loader import PandasDatasetLoader
from infrastructure.security.json_key_store import JsonKeyStore
from tests.conftest import REPO_ROOT
from tests.e2e.test_text_bento_serve import _wait_ready
from tests.support.browser import chromium, downloaded, score_file_in_ui, wait_for
from tests.support.server import bentoml_server
from tests.support.serving import train_and_promote

pytestmark = [pytest.mark.slow, pytest.mark.serve]

MODEL = "ui-e2e-iris"
SERVICE = "infrastructure.serving.entrypoints.tabular:TabularClassifier"
SCREENSHOTS = REPO_ROOT / "benchmarks" / "results" / "ui"
FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
SETOSA = ["5.1", "3.5", "1.4", "0.2"]


def _text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _shoot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def _upload_file(folder: Path) -> tuple[Path, pd.DataFrame]:
    rows = PandasDatasetLoader().load("iris").sample(40, random_state=0)[FEATURES]
    rows = rows.reset_index(drop=True)
    table = rows.astype(object)
    table.loc[5, "petal_width_cm"] = "wide"
    table.loc[17, "sepal_length_cm"] = "n/a"
    path = folder / "my-flowers.csv"
    table.to_csv(path, index=False)
    return path, rows


def _traffic(url: str, key: str, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    with httpx.Client(timeout=10, headers=headers) as client:
        while not stop.is_set():
            client.post(f"{url}/classify", json={"rows": rows})
            time.sleep(0.02)


def test_web_ui_predicts_scores_a_file_and_charts_the_service(tmp_path: Path) -> None:
    home = tmp_path / "state"
    train_and_promote(home, MODEL)
    _, key = JsonKeyStore(home / "api_keys.json").create("browser", Role.PREDICT)
    env = {
        "MLOPS_HOME": str(home),
        "MLOPS_SERVE_MODEL_NAME": MODEL,
        "MLOPS_SERVE_REQUIRE_API_KEY": "true",
        "MLOPS_SERVE_DRIFT_EVERY": "20",
    }
    upload, rows = _upload_file(tmp_path)
    downloads = tmp_path / "downloads"
    log = tmp_path / "serve.log"
    with bentoml_server(SERVICE, env, log) as url, chromium(downloads) as driver:
        _wait_ready(url)
        page = httpx.get(f"{url}/ui/", timeout=10)
        assert (
            page.status_code == 200
            and "default-src 'self'" in page.headers["content-security-policy"]
        )

        # Without a key the page says what is missing; with one, the form is built.
        driver.get(f"{url}/ui/#predict")
        banner = wait_for(lambda: _text(driver, "#banner"), 20, "the 401 banner")
        assert "401" in banner and "API key" in banner, banner
        driver.find_element(By.ID, "api-key").send_keys(key, "\t")
        fields = wait_for(
            lambda: driver.find_elements(By.CSS_SELECTOR, "#predict-fields input"), 20, "form"
        )
        assert [f.get_attribute("name") for f in fields] == FEATURES

        # A bad value gets the service's 400, naming the field.
        for name, value in zip(FEATURES, [*SETOSA[:3], "abc"], strict=True):
            driver.find_element(By.ID, f"field-{name}").send_keys(value)
        driver.find_element(By.ID, "predict-submit").click()
        error = wait_for(lambda: _text(driver, "#predict-error"), 20, "the 400 message")
        assert "400" in error and "petal_width_cm" in error, error
        width = driver.find_element(By.ID, "field-petal_width_cm")
        width.clear()
        width.send_keys(SETOSA[3])
        driver.find_element(By.ID, "predict-submit").click()
        label = wait_for(lambda: _text(driver, "#answer-label"), 20, "the answer")
        assert label == "setosa"
        bars = driver.find_elements(By.CSS_SELECTOR, "#answer-bars .bar")
        assert sorted(str(b.get_attribute("data-class")) for b in bars) == [
            "setosa",
            "versicolor",
            "virginica",
        ]
        details = _text(driver, "#answer-meta")
        assert "champion" in details and "model version\n1" in details, details
        driver.find_element(By.CSS_SELECTOR, "#feedback-buttons button").click()
        assert "correct" in wait_for(lambda: _text(driver, "#feedback-result"), 20, "feedback")
        _shoot(driver, "predict")

        # A CSV with two bad rows: scored in the background, both files downloaded.
        job, cells = score_file_in_ui(driver, url, upload)
        assert cells[0] == "my-flowers.csv" and cells[3:6] == ["38", "2", "1"], cells
        _shoot(driver, "batch")
        job.find_element(By.CSS_SELECTOR, "[data-download=result]").click()
        scored = pd.read_csv(downloaded(downloads, "scored-my-flowers.csv"))
        job.find_element(By.CSS_SELECTOR, "[data-download=rejects]").click()
        rejects = pd.read_csv(downloaded(downloads, "rejects-my-flowers.csv"))
        assert len(scored) == 38 and sorted(rejects["row"]) == [5, 17]
        assert rejects["error"].str.contains("petal_width_cm").any(), rejects
        good = rows.drop(index=[5, 17])
        answers = httpx.post(
            f"{url}/classify",
            json={"rows": good.to_numpy().tolist()},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()
        assert scored["predicted_label"].tolist() == [a["label"] for a in answers]

        # Under traffic the monitor's charts fill in, and drift is computed per feature.
        stop = threading.Event()
        load = threading.Thread(target=_traffic, args=(url, key, stop), daemon=True)
        load.start()
        try:
            driver.get(f"{url}/ui/#monitor")
            wait_for(
                lambda: driver.execute_script(
                    "return monitor.series('rate')[0].filter(v => v > 0).length >= 3"
                ),
                60,
                "three samples of a non-zero prediction rate",
            )
            drift_rows = wait_for(
                lambda: [
                    row.text
                    for row in driver.find_elements(By.CSS_SELECTOR, "#drift-table tbody tr")
                    if row.text.split(" ")[0] in FEATURES
                ],
                60,
                "drift per feature",
            )
        finally:
            stop.set()
            load.join(10)
        for chart in ("rate", "latency", "errors", "confidence", "accuracy", "drift"):
            canvas = driver.find_element(By.CSS_SELECTOR, f"#chart-{chart} canvas")
            assert canvas.size["width"] > 100 and canvas.size["height"] > 100, chart
        assert len(drift_rows) == len(FEATURES), drift_rows
        assert "predictions" in _text(driver, "#monitor-summary")
        _shoot(driver, "monitor")

        # The registry's versions and the training runs behind them.
        driver.get(f"{url}/ui/#models")
        version = wait_for(
            lambda: driver.find_element(By.CSS_SELECTOR, "#versions tr[data-version='1']"),
            30,
            "the registered version",
        )
        assert "champion" in version.text and "accuracy" in version.text
        assert driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
        assert "champion" in _text(driver, "#served")
        _shoot(driver, "models")
        # The 401 before the key and the 400 for "abc" were asked for; nothing else failed.
        severe = [
            entry
            for entry in driver.get_log("browser")  # type: ignore[no-untyped-call]
            if entry["level"] == "SEVERE"
            and not any(f"status of {s}" in entry["message"] for s in (400, 401))
        ]
        assert not severe, severe
    served = log.read_text()
    assert "Traceback" not in served, served
