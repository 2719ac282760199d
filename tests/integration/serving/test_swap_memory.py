"""Swapping text versions releases the old ones: RSS after 20 swaps stays within 10% of
its value after the first (the issue's bound), with the real transformers loader."""

from __future__ import annotations

import gc

import psutil
import pytest

from application.inference.model_pool import ModelPool
from application.inference.reload import Reloader
from domain.serving.variants import Variant
from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.loaders import TransformersModelLoader
from infrastructure.store.bento_model_store import BentoModelStore
from tests.fakes.serving import FakeSource

pytestmark = pytest.mark.slow


def test_rss_after_20_swaps_stays_within_10_percent_of_after_1(text_champion: str) -> None:
    tag = BentoModelStore().tag_for_alias(text_champion, "champion")
    assert tag is not None
    settings = TextServingSettings(model_name=text_champion, warmup_batch_sizes=(1,))
    pool = ModelPool()
    source = FakeSource({"champion": tag})
    reloader = Reloader(
        text_champion,
        [Variant(name="champion", alias="champion")],
        source,
        TransformersModelLoader(settings),
        pool,
    )
    process = psutil.Process()
    rss: list[int] = []
    for _ in range(21):
        # Emptying the pool makes each reload load a fresh copy of the version, as a swap
        # to a new version would; the copy it replaces must be freed.
        pool.swap("champion", None)
        report = reloader.reload()
        assert report.variants[0].outcome == "loaded", report
        gc.collect()
        rss.append(process.memory_info().rss)

    after_first, after_last = rss[1], rss[-1]
    print("RSS MiB after each load:", [round(r / 2**20) for r in rss])
    assert after_last <= after_first * 1.10, [round(r / 2**20) for r in rss]
