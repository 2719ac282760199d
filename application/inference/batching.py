"""Continuous micro-batching of requests on the event loop, one batcher per model variant.

A batch starts as soon as the previous one has finished, with everything that arrived while
it ran (up to ``max_batch_size`` items): a lone request runs at once, and under load the
batches grow by themselves. With ``linger``, the next batch waits up to that share of the
last batch's time for the callers it answered to send again (see ``_await_returns``). The
next batch is formed on the event loop, after it has read the requests that came in
meanwhile. Two alternatives were measured
and dropped: starting the next batch from the scoring thread the moment the last one
returned made batches smaller (15 vs 24 texts, synthetic-GPU model in `make bench-overhead`)
at no gain in throughput, since the text model was already busy 97% of the time; and a batch
limit cut to fit half the latency bound gave more 503s, not fewer (the queue it left behind
outwaited the bound), under a 400 ms bound on 2 cores.

Load beyond capacity is shed on arrival: the batcher times its own batches and refuses a
request whose estimated wait (the rest of the batch in flight, then the batches it takes to
clear the queue ahead of it, each as long as recent batches) exceeds the latency bound. The
client hears at once (429 and when to retry) instead of after a second in the queue, and
the requests that are accepted keep their latency. Batches, not items, are the unit:
batching makes an item cheaper as the queue grows, so a rate per item measured on small
batches shed requests a full batch would have served in time (seen in a CI run).

BentoML's adaptive batching cannot be used here because it merges requests before the
service sees them, and routing must see each request (its key decides champion or
challenger) before it joins a batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

from shared.errors import OverloadedError, ShedError

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    """Runs ``run`` on merged requests in ``executor``, one batch in flight at a time.

    A request is never split across batches; one bigger than ``max_batch_size`` runs alone.
    An exception in ``run`` makes the batch run again one request at a time: only the
    requests that fail alone get the error. A request still queued
    ``max_wait_s`` after it arrived fails with :class:`OverloadedError` instead of running
    late (its client has likely given up; running it would only delay the others); one whose
    estimated wait already exceeds ``max_wait_s`` on arrival fails with :class:`ShedError`.
    ``on_batch`` hears each batch's size and its seconds in ``run``, after it ran.
    """

    def __init__(
        self,
        run: Callable[[list[In]], Sequence[Out]],
        max_batch_size: int,
        executor: Executor,
        on_batch: Callable[[int, float], None] | None = None,
        max_wait_s: float | None = None,
        linger: float = 0.0,
    ) -> None:
        if not 0.0 <= linger <= 1.0:
            raise ValueError(f"linger is a share of a batch's time, within [0, 1], got {linger}")
        self._run = run
        self._linger = linger
        # While the drain lingers: the queued items that end it early, and its waiter.
        self._fill_target = 0
        self._filled: asyncio.Future[None] | None = None
        self._max_wait_s = max_wait_s
        self._max = max_batch_size
        self._executor = executor
        self._on_batch = on_batch
        self._queue: deque[tuple[list[In], asyncio.Future[list[Out]], float]] = deque()
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None
        self._waiting_items = 0
        self._in_flight = 0
        self._in_flight_since = 0.0
        # Seconds per batch, smoothed over recent batches; None until one batch has run.
        self._batch_s: float | None = None

    @property
    def batch_seconds(self) -> float | None:
        """How long recent batches took (None before the first batch)."""
        return self._batch_s

    def estimated_wait_s(self, items: int) -> float | None:
        """How long ``items`` more would take to come out: the batch in flight finishes,
        then the queue ahead and these items run in full batches of the recent length."""
        if self._batch_s is None:
            return None
        elapsed = time.monotonic() - self._in_flight_since
        left_in_flight = max(0.0, self._batch_s - elapsed) if self._in_flight else 0.0
        batches = -(-(self._waiting_items + items) // self._max)  # ceiling division
        return left_in_flight + batches * self._batch_s

    @property
    def waiting(self) -> int:
        """Items queued behind the batch in flight."""
        return self._waiting_items

    def _shed(self, items: int) -> None:
        if self._max_wait_s is None or not self._queue:
            return  # an empty queue: the request runs next, whatever the estimate says
        wait = self.estimated_wait_s(items)
        if wait is not None and wait > self._max_wait_s:
            raise ShedError(
                f"overloaded: about {wait * 1000:.0f} ms of work is queued, over the "
                f"{self._max_wait_s * 1000:.0f} ms latency bound; retry later",
                retry_after_s=wait - self._max_wait_s,
            )

    async def submit(self, items: list[In]) -> list[Out]:
        self._shed(len(items))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Out]] = loop.create_future()
        self._queue.append((items, future, time.monotonic()))
        self._waiting_items += len(items)
        if self._filled is not None and self._waiting_items >= self._fill_target:
            _release(self._filled)
        if not self._draining:
            self._draining = True
            # Kept: the loop holds tasks only weakly, and a collected drain would strand callers.
            self._drain_task = loop.create_task(self._drain())
        return await future

    def _expire(self) -> None:
        if self._max_wait_s is None:
            return
        now = time.monotonic()
        while self._queue and now - self._queue[0][2] > self._max_wait_s:
            items, future, _ = self._queue.popleft()
            self._waiting_items -= len(items)
            if not future.done():
                future.set_exception(
                    OverloadedError(f"waited over {self._max_wait_s * 1000:.0f} ms for a batch")
                )

    def _next_batch(self) -> list[tuple[list[In], asyncio.Future[list[Out]]]]:
        first_items, first_future, _ = self._queue.popleft()
        batch = [(first_items, first_future)]
        size = len(first_items)
        while self._queue and size + len(self._queue[0][0]) <= self._max:
            items, future, _ = self._queue.popleft()
            batch.append((items, future))
            size += len(items)
        self._waiting_items -= size
        return batch

    def _measured(self, seconds: float) -> None:
        # Smoothed, so one slow batch (a GC pause) does not shed a burst of requests.
        self._batch_s = seconds if self._batch_s is None else 0.8 * self._batch_s + 0.2 * seconds

    def _timed(self, items: list[In]) -> tuple[Sequence[Out], float]:
        """``run`` and its own seconds, in the executor: the batch's time seen from the
        loop also holds the hand-offs, which count for latency, not for how busy the model
        is."""
        started = time.monotonic()
        outputs = self._run(items)
        return outputs, time.monotonic() - started

    async def _one_by_one(
        self, batch: list[tuple[list[In], asyncio.Future[list[Out]]]], error: Exception
    ) -> None:
        """A failed batch is run again request by request, so the request whose input broke
        the call gets the error and the others in the batch still get their answers."""
        if len(batch) == 1:
            if not batch[0][1].done():
                batch[0][1].set_exception(error)
            return
        loop = asyncio.get_running_loop()
        for items, future in batch:
            if future.done():
                continue
            try:
                outputs = await loop.run_in_executor(self._executor, self._run, items)
            except Exception as alone:
                future.set_exception(alone)
            else:
                future.set_result(list(outputs))

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                self._expire()
                if not self._queue:
                    break
                batch = self._next_batch()
                flat = [item for items, _ in batch for item in items]
                self._in_flight, self._in_flight_since = len(flat), time.monotonic()
                try:
                    outputs, seconds = await loop.run_in_executor(self._executor, self._timed, flat)
                except Exception as error:
                    await self._one_by_one(batch, error)
                    continue
                finally:
                    self._measured(time.monotonic() - self._in_flight_since)
                    self._in_flight = 0
                if self._on_batch is not None:
                    self._on_batch(len(flat), seconds)
                start = 0
                for items, future in batch:
                    if not future.done():  # a caller that gave up (timeout) is skipped
                        future.set_result(list(outputs[start : start + len(items)]))
                    start += len(items)
                if self._linger:
                    await self._await_returns(len(flat), seconds)
        finally:
            self._draining = False

    async def _await_returns(self, answered: int, seconds: float) -> None:
        """Holds the next batch up to ``linger`` of the last one's time, until the queue
        holds what it held plus what was just answered (the callers that come straight back).

        Without it, N closed-loop callers settle into two batches of N/2, one running while
        the other queues, and never form the batch of N that a model is fastest at: on 2
        cores the text service scored at the model's batch-32 rate with 64 clients, 0.71x its
        batch-64 rate in that run. Open-loop traffic gives up at most ``linger`` of a batch's
        time per batch.
        """
        target = min(self._max, self._waiting_items + answered)
        if self._waiting_items >= target:
            return
        loop = asyncio.get_running_loop()
        filled: asyncio.Future[None] = loop.create_future()
        self._filled, self._fill_target = filled, target
        timer = loop.call_later(self._linger * seconds, _release, filled)
        try:
            await filled
        finally:
            timer.cancel()
            self._filled = None


def _release(filled: asyncio.Future[None]) -> None:
    if not filled.done():
        filled.set_result(None)
