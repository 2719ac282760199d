"""``mlops_requests_in_flight``: written at once for a new series or without an event loop,
otherwise at most every ``write_every_s`` with the count as it is then."""

from __future__ import annotations

import asyncio
import uuid

from infrastructure.monitoring.prometheus_metrics import (
    PrometheusRequestsInFlight,
    _in_flight_family,
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
