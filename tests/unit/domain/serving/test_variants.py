"""Sticky, deterministic traffic split between champion and challenger."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError
from scipy.stats import binomtest

from domain.serving.variants import (
    BUCKETS,
    CHALLENGER,
    CHAMPION,
    TrafficSplit,
    Variant,
    VariantMode,
)

KEYS = [f"user-{i}" for i in range(4000)]


def test_a_20_percent_challenger_gets_about_20_percent_of_keys() -> None:
    routed = TrafficSplit(20.0).route_all(KEYS)
    hits = routed.count(CHALLENGER)
    # Exact binomial test: a fair 20% split is not rejected at the 1% level.
    assert binomtest(hits, len(KEYS), 0.2).pvalue > 0.01, hits


def test_routing_is_sticky_and_only_grows_the_challenger_set() -> None:
    five, twenty_five = TrafficSplit(5.0), TrafficSplit(25.0)
    assert five.route_all(KEYS) == TrafficSplit(5.0).route_all(KEYS), "same key, same variant"
    small = {k for k in KEYS if five.route(k) == CHALLENGER}
    large = {k for k in KEYS if twenty_five.route(k) == CHALLENGER}
    assert small < large, "raising the weight never moves a key back to the champion"


@pytest.mark.parametrize(("weight", "expected"), [(0.0, 0), (100.0, len(KEYS))])
def test_the_ends_of_the_range_are_exact(weight: float, expected: int) -> None:
    assert TrafficSplit(weight).route_all(KEYS).count(CHALLENGER) == expected


def test_weights_outside_0_100_are_refused() -> None:
    with pytest.raises(ValueError, match="weight"):
        TrafficSplit().set_weight(101)
    with pytest.raises(ValidationError):
        Variant(name="challenger", alias="challenger", weight=-1)
    with pytest.raises(ValidationError, match="mode"):
        Variant(name="shadow", alias="shadow", mode=VariantMode.LIVE)


def test_requests_without_a_key_are_spread_at_random() -> None:
    rng = random.Random(7)  # seeded: the default draws from the global generator
    split = TrafficSplit(50.0, random_bucket=lambda: rng.randrange(BUCKETS))
    routed = [split.route(None) for _ in range(2000)]
    assert binomtest(routed.count(CHALLENGER), 2000, 0.5).pvalue > 0.01


def test_the_default_random_bucket_follows_the_weight() -> None:
    routed = [TrafficSplit(20.0).route(None) for _ in range(5000)]
    assert binomtest(routed.count(CHALLENGER), 5000, 0.2).pvalue > 0.001
    assert {TrafficSplit(0.0).route(None) for _ in range(100)} == {CHAMPION}
