"""The token bucket per client: a burst, then the rate, and each client its own."""

from __future__ import annotations

import pytest

from infrastructure.serving import rate_limit
from infrastructure.serving.rate_limit import KeyRateLimiter
from tests.fakes.clock import FakeClock


def test_a_burst_then_the_rate_and_the_wait_until_the_next_token() -> None:
    clock = FakeClock()
    limiter = KeyRateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0, "another client has its own bucket"
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 10
    assert [limiter.take("a") for _ in range(4)][-1] > 0, "refills up to the burst only"


def test_idle_clients_are_forgotten_when_the_table_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rate_limit, "MAX_CLIENTS", 10)
    clock = FakeClock()
    limiter = KeyRateLimiter(rate=1.0, burst=1, clock=clock)
    for client in range(10):
        limiter.take(f"old-{client}")
    clock.now += 5  # the old buckets are full again
    limiter.take("new-1")
    limiter.take("new-2")
    assert limiter.clients == 2, "the ten idle ones dropped"
