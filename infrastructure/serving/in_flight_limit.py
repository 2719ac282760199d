"""How many requests one worker takes in at once: a floor, raised to what it has shown it
answers within the latency bound.

Why not a fixed count: ``MAX_CONCURRENCY`` (256) was sized on machines that served 300-600
requests/s a worker, where 256 in flight was most of a second of work. On a machine that
served 3,000 requests/s, 256 was 80 ms of work: a short stall (a burst of new connections)
filled it, and the guard refused requests the worker would have answered well within its
latency bound (a 10-minute soak at half capacity shed 0.27-6.2%, README "Reliability").
By Little's law, in flight = throughput x time in the system, so a worker that answers R
requests/s keeps an admitted request within the bound L while no more than R x L are in
flight. R is measured here, from the requests the worker really answered (sheds do not
count: they are cheap and would inflate it), as the best recent one-second rate, decaying
so a slower model (a swap) lowers it within seconds.

No request is refused that the fixed floor would have admitted, so the limit can only
grow past the old behaviour, and only as far as the worker has proved it can go.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Answers are counted over windows of this length; a shorter one reads noise (a batch
# of 64 answered at once is a spike), a longer one reacts late to a swap.
WINDOW_S = 1.0
# The best window's rate loses this share per window without a better one (about a
# 7-window half-life), so one fast second does not hold the limit up for long.
DECAY = 0.9


class InFlightLimit:
    """The in-flight ceiling: ``floor``, or the worker's answer rate x ``latency_bound_s``
    when that is higher (``latency_bound_s`` 0: always ``floor``)."""

    def __init__(
        self,
        floor: int,
        latency_bound_s: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        if floor < 0 or latency_bound_s < 0:
            raise ValueError("floor and latency_bound_s are >= 0")
        self.floor = floor
        self.latency_bound_s = latency_bound_s
        # The first window starts now; later times come with each answer (``answered``).
        self._window_start = clock()
        self._answered = 0
        self._rate = 0.0
        # Told the ceiling now and whenever a window moves it (a gauge).
        self._on_change = on_change
        self._reported = self.current()
        if on_change is not None:
            on_change(self._reported)

    @property
    def rate(self) -> float:
        """Answers per second the limit follows (the best recent window's, decayed)."""
        return self._rate

    def answered(self, now: float) -> None:
        """One request answered (not shed) at ``now`` (the ``clock``'s time)."""
        self._answered += 1
        elapsed = now - self._window_start
        if elapsed >= WINDOW_S:
            self._roll(elapsed, now)

    def _roll(self, elapsed: float, now: float) -> None:
        # An idle spell ends one long window, so it decays the rate once, not once a
        # second: idleness says nothing about how fast the worker is.
        self._rate = max(self._answered / elapsed, self._rate * DECAY)
        self._window_start, self._answered = now, 0
        if self._on_change is not None and (limit := self.current()) != self._reported:
            self._reported = limit
            self._on_change(limit)

    def current(self) -> int:
        """The ceiling now: never below ``floor``."""
        if not self.latency_bound_s:
            return self.floor
        return max(self.floor, int(self._rate * self.latency_bound_s))
