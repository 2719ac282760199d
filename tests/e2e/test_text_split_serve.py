"""The split text topology under a real `bentoml serve`: three front workers call one model
runner (``bentoml.depends``), which merges their micro-batches; a promotion is followed
without a restart by every front and the runner; bad input is still a 400."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bentoml
import httpx
import pytest

from infrastructure.store.bento_model_store import (
    ALIAS_LABEL,
    VERSION_LABEL,
    BentoModelStore,
    stored_contract,
)
from tests.e2e.test_hot_swap_serve import _until_every_worker_serves
from tests.e2e.test_text_bento_serve import _wait_ready
from tests.support.server import bentoml_server

pytestmark = [pytest.mark.slow, pytest.mark.serve]

SERVICE = "infrastructure.serving.entrypoints.text:TextClassifier"
MODEL = "split-sst2"


def _store_copy(source_name: str, version: str) -> str:
    """The trained champion stored again as ``MODEL`` ``version``, made the champion (a
    promotion as the store sees it, without a second fine-tuning run)."""
    store = BentoModelStore()
    tag = store.tag_for_alias(source_name, "champion")
    assert tag is not None
    source = bentoml.models.get(tag)
    labels = {
        **source.info.labels,
        "registered_model": MODEL,
        VERSION_LABEL: version,
        ALIAS_LABEL: "champion",
    }
    return store.save_text_model(MODEL, Path(source.path), labels, stored_contract(source))


def _classify(url: str, text: str) -> httpx.Response:
    return httpx.post(f"{url}/classify", json={"texts": [text]}, timeout=30)


def _until_answered_by(url: str, version: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reply = _classify(url, "a fine film .")
        if reply.status_code == 200 and reply.json()[0]["model_version"] == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"not answered by version {version} in {timeout_s}s")


def test_fronts_share_one_runner_that_merges_batches_and_follows_promotion(
    tmp_path: Path, text_champion: str
) -> None:
    first = _store_copy(text_champion, "1")
    env = {
        "MLOPS_TEXT_SERVE_MODEL_NAME": MODEL,
        "MLOPS_TEXT_SERVE_TOPOLOGY": "split",
        # Each front keeps one call in flight, so while the runner scores one front's call
        # at most the other fronts' calls wait: with two fronts, one call waits and nothing
        # can merge (a CI run: 17 calls, 17 batches). Three fronts, and a runner batch room
        # for three fronts' calls (as on a GPU, GPU_RUNNER_BATCH_FACTOR), make the waiting
        # calls merge whenever the runner is busy.
        "MLOPS_TEXT_SERVE_WORKERS": "3",
        # One runner: the calls merge in it (two on CPU by default, each with its batches).
        "MLOPS_TEXT_SERVE_RUNNER_WORKERS": "1",
        "MLOPS_TEXT_SERVE_RUNNER_MAX_BATCH_SIZE": "192",
        "MLOPS_TEXT_SERVE_RELOAD_INTERVAL_S": "1",
        "MLOPS_TEXT_SERVE_WARMUP_BATCH_SIZES": "[1,8]",
        "MLOPS_TEXT_SERVE_MAX_LATENCY_MS": "30000",
    }
    log = tmp_path / "serve.log"
    with bentoml_server(SERVICE, env, log) as url:
        try:
            # Four processes (three fronts, one runner) start on two cores: a CI run on a
            # slow, loaded machine had none answering /readyz within 120 s (the others
            # passed well within it); the log says where it stood.
            _wait_ready(url, timeout_s=240.0)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{log.read_text()[-6000:]}") from None
        metadata = httpx.post(f"{url}/metadata", timeout=30).json()
        assert (metadata["topology"], metadata["workers"]) == ("split", 3)
        assert metadata["runner"]["loaded"] == [first]
        assert metadata["warmup"]["last_round_ms"].keys() == {"1", "8"}, "the runner's warm-up"

        # Full batches of long texts keep the runner busy for a while, so the other fronts'
        # calls queue behind them and must come out merged.
        long_texts = [" ".join(["a slow and thoughtful film"] * 60) + f" {i}" for i in range(64)]
        texts = [f"the film is {'good' if i % 2 else 'dull'} , take {i} ." for i in range(192)]
        with ThreadPoolExecutor(max_workers=96) as pool:
            fulls = [
                pool.submit(httpx.post, f"{url}/classify", json={"texts": long_texts}, timeout=120)
                for _ in range(4)
            ]
            time.sleep(0.05)
            replies = list(pool.map(lambda text: _classify(url, text), texts))
        for full in fulls:
            assert full.result().status_code == 200, full.result().text
        assert [r.status_code for r in replies] == [200] * len(texts)
        assert {r.json()[0]["label"] for r in replies} <= {"positive", "negative"}
        runner = httpx.post(f"{url}/metadata", timeout=30).json()["runner"]
        assert runner["items"] >= len(texts) + len(long_texts)
        assert runner["batches"] < runner["calls"], f"the runner never merged: {runner}"

        second = _store_copy(text_champion, "2")
        _until_answered_by(url, "2")
        _until_every_worker_serves(url, "2", workers=3, timeout_s=60)
        runner = httpx.post(f"{url}/metadata", timeout=30).json()["runner"]
        assert second in runner["loaded"], runner

        bad = httpx.post(f"{url}/classify", json={"texts": ["  "]}, timeout=10)
        assert bad.status_code == 400 and "blank" in bad.text
        stats = httpx.post(f"{url}/stats", timeout=10).json()
        assert stats["reload_failures"] == 0
    served = log.read_text()
    assert "Traceback" not in served and "[ERROR]" not in served, served
