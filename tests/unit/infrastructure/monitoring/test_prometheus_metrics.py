"""Metrics written in bulk: ``mlops_requests_in_flight`` (at once for a new series or without
an event loop, otherwise at most every ``write_every_s``), histograms observed together
(``observe_all``, ``DeferredHistogram``)."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import Histogram

from infrastructure.monitoring.prometheus_metrics import (
    DeferredHistogram,
    PrometheusInFlightLimit,
    PrometheusRequestsInFlight,
    _in_flight_family,
    _in_flight_limit_family,
    observe_all,
)


def _value(service: str, endpoint: str) -> float:
    return float(_in_flight_family().labels(service, endpoint)._value.get())


def test_without_an_event_loop_every_change_is_written() -> None:
    service = f"svc-{uuid.uuid4().hex}"
    gauge = PrometheusRequestsInFlight(service)
    gauge.add("classify", 1)
    gauge.add("classify", 1)
    assert _value(service, "classify") == 2
    gauge.add("classify", -1)
    assert _value(service, "classify") == 1


def test_on_an_event_loop_changes_are_written_together_a_moment_later() -> None:
    service = f"svc-{uuid.uuid4().hex}"
    gauge = PrometheusRequestsInFlight(service, write_every_s=0.05)
    seen: dict[str, float] = {}

    async def scenario() -> None:
        gauge.add("classify", 1)  # a new series: written at once
        seen["first"] = _value(service, "classify")
        gauge.add("predict", 1)  # new too: every changed count is written with it
        gauge.add("classify", 1)
        gauge.add("classify", 1)
        seen["before the write"] = _value(service, "classify")
        await asyncio.sleep(0.2)
        seen["after"] = _value(service, "classify")
        seen["predict"] = _value(service, "predict")
        gauge.add("classify", -3)
        await asyncio.sleep(0.2)
        seen["drained"] = _value(service, "classify")

    asyncio.run(scenario())
    assert seen == {
        "first": 1,
        "before the write": 1,
        "after": 3,
        "predict": 1,
        "drained": 0,
    }


AMOUNTS = [0.0, 0.001, 0.0015, 0.02, 0.02, 0.3, 1.0, 7.5, 99.0]
BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)


def test_observe_all_writes_what_observe_writes() -> None:
    name = f"h_{uuid.uuid4().hex}"
    family = Histogram(name, "x", ["way"], buckets=BUCKETS)
    for amount in AMOUNTS:
        family.labels("single").observe(amount)
    observe_all(family.labels("bulk"), AMOUNTS)
    by_way: dict[str, dict[str, float]] = {}
    for metric in family.collect():
        for s in metric.samples:
            if not s.name.endswith("_created"):
                key = f"{s.name}{s.labels.get('le', '')}"
                by_way.setdefault(s.labels["way"], {})[key] = s.value
    assert by_way["bulk"] == by_way["single"]
    assert by_way["bulk"][f"{name}_count"] == len(AMOUNTS)


def test_deferred_observations_are_written_a_moment_later_on_a_loop() -> None:
    family = Histogram(f"h_{uuid.uuid4().hex}", "x", ["way"], buckets=BUCKETS)
    deferred = DeferredHistogram(family.labels("deferred"), write_every_s=0.05)
    counts: list[float] = []

    def count() -> float:
        return float(family.labels("deferred")._sum.get())

    async def scenario() -> None:
        deferred.observe(1.0)
        deferred.observe(2.0)
        counts.append(count())
        await asyncio.sleep(0.2)
        counts.append(count())

    asyncio.run(scenario())
    deferred.observe(4.0)  # no event loop: written at once
    counts.append(count())
    assert counts == [0.0, 3.0, 7.0]


def test_the_in_flight_limit_gauge_holds_the_last_ceiling_set() -> None:
    service = f"svc-{uuid.uuid4().hex}"
    gauge = PrometheusInFlightLimit(service)
    gauge(256)
    gauge(4800)
    assert _in_flight_limit_family().labels(service)._value.get() == 4800
