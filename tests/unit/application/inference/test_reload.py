"""Hot swap: a moved alias loads, is checked, and replaces the old version; a bad one never
does, and the old version keeps serving."""

from __future__ import annotations

import time

import pytest

from application.inference.model_pool import ModelPool
from application.inference.reload import AliasWatcher, Reloader
from domain.serving.variants import Variant, VariantMode
from tests.fakes.serving import FakeLoader, FakeScorer, FakeSource, loaded

VARIANTS = [
    Variant(name="champion", alias="champion"),
    Variant(name="challenger", alias="challenger", weight=20),
    Variant(name="shadow", alias="shadow", mode=VariantMode.SHADOW),
]


def _reloader(source: FakeSource, loader: FakeLoader, pool: ModelPool) -> Reloader:
    return Reloader("m", VARIANTS, source, loader, pool)


def test_a_moved_alias_is_loaded_checked_and_swapped() -> None:
    pool = ModelPool()
    source = FakeSource({"champion": "m:1"})
    loader = FakeLoader({"m:1": loaded("1"), "m:2": loaded("2"), "m:3": loaded("3")})
    reloader = _reloader(source, loader, pool)

    first = reloader.reload()
    assert [v.outcome for v in first.variants] == ["loaded", "absent", "absent"]
    assert reloader.reload().variants[0].outcome == "unchanged" and loader.loads == ["m:1"]

    source.aliases.update(champion="m:2", challenger="m:3")
    report = reloader.reload()
    assert {v.variant: v.outcome for v in report.variants} == {
        "champion": "swapped",
        "challenger": "loaded",
        "shadow": "absent",
    }
    assert pool.champion().version == "2" and pool.get("challenger").version == "3"  # type: ignore[union-attr]

    del source.aliases["challenger"]
    assert reloader.reload().variants[1].outcome == "removed"
    assert pool.get("challenger") is None


@pytest.mark.parametrize(
    ("candidate", "problem"),
    [
        (RuntimeError("corrupt weights"), "corrupt weights"),
        (loaded("2", FakeScorer(classes=("a", "b", "c"))), "classes"),
        (loaded("2", FakeScorer(fail=True)), "broken model"),
        (loaded("2", task="text-classification", max_length=16), "task"),
    ],
)
def test_a_bad_new_version_keeps_the_old_one_serving(candidate: object, problem: str) -> None:
    pool = ModelPool()
    source = FakeSource({"champion": "m:1"})
    loader = FakeLoader({"m:1": loaded("1"), "m:2": candidate})  # type: ignore[dict-item]
    failures: list[str] = []
    reloader = Reloader(
        "m", VARIANTS, source, loader, pool, on_failure=lambda v, e: failures.append(v)
    )
    reloader.reload()

    source.aliases["champion"] = "m:2"
    report = reloader.reload()

    outcome = report.variants[0]
    assert outcome.outcome == "failed" and problem in (outcome.error or "")
    assert outcome.serving == "m:1" and pool.champion().version == "1"
    assert report.failed and reloader.failures == 1 and failures == ["champion"]


def test_the_watcher_follows_the_alias_on_its_own() -> None:
    pool = ModelPool()
    source = FakeSource({"champion": "m:1"})
    reloader = _reloader(source, FakeLoader({"m:1": loaded("1"), "m:2": loaded("2")}), pool)
    reloader.reload()
    watcher = AliasWatcher(reloader, interval_s=0.02)
    watcher.start()
    try:
        source.aliases["champion"] = "m:2"
        deadline = time.monotonic() + 5
        while pool.champion().version != "2" and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        watcher.stop()
    assert pool.champion().version == "2"
