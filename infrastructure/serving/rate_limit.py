"""Per-client request rate: a token bucket per API key (per client address without one).

Hand-written rather than a library (``limits``): one bucket is two floats updated per
request on the event loop, with no lock and no storage to configure. Buckets live in the
worker process, so with several workers a client's connections spread over them and the
effective rate is up to workers x the setting (one worker is the default).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Buckets of clients not seen for this long are full again, so they are dropped when the
# table grows past MAX_CLIENTS (a scan over many client addresses must not grow it forever).
MAX_CLIENTS = 10_000


class KeyRateLimiter:
    """``rate`` requests per second per client, bursts of up to ``burst``."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(max(1, burst))
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, updated)

    @property
    def clients(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> float:
        """0.0 when the request may go on (a token taken), else seconds until it may."""
        now = self._clock()
        tokens, updated = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._forget_full(now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        refill_s = self.burst / self.rate
        self._buckets = {
            client: (tokens, updated)
            for client, (tokens, updated) in self._buckets.items()
            if now - updated < refill_s
        }
