"""LRU eviction, time-to-live and version-scoped keys of the response cache."""

from __future__ import annotations

import pytest

from application.inference.prediction_cache import PredictionCache
from tests.fakes.clock import FakeClock


def test_hits_and_misses_are_reported_by_position() -> None:
    cache: PredictionCache[str] = PredictionCache(10, 60.0)
    cache.store([(("v1", "good"), "positive")])
    lookup = cache.lookup([("v1", "bad"), ("v1", "good"), ("v2", "good")])
    assert lookup.hits == {1: "positive"}
    assert lookup.misses == [0, 2], "another model version never shares an entry"


def test_least_recently_used_entry_is_evicted_first() -> None:
    cache: PredictionCache[int] = PredictionCache(2, 60.0)
    cache.store([("a", 1), ("b", 2)])
    cache.lookup(["a"])  # "a" is now the most recently used
    cache.store([("c", 3)])
    assert len(cache) == 2
    assert cache.lookup(["a", "b", "c"]).misses == [1]


def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache: PredictionCache[int] = PredictionCache(10, 5.0, clock=clock)
    cache.store([("a", 1)])
    clock.now += 4.9
    assert cache.lookup(["a"]).hits == {0: 1}
    clock.now += 0.2
    assert cache.lookup(["a"]).misses == [0]
    assert len(cache) == 0, "an expired entry is dropped when found"


def test_storing_again_refreshes_value_and_ttl() -> None:
    clock = FakeClock()
    cache: PredictionCache[int] = PredictionCache(10, 5.0, clock=clock)
    cache.store([("a", 1)])
    clock.now += 4.0
    cache.store([("a", 2)])
    clock.now += 4.0
    assert cache.lookup(["a"]).hits == {0: 2}


@pytest.mark.parametrize(("entries", "ttl"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_invalid_limits_are_refused(entries: int, ttl: float) -> None:
    with pytest.raises(ValueError):
        PredictionCache(entries, ttl)
