"""Continuous micro-batching: batches grow under load, a failure stays in its batch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from application.inference.batching import MicroBatcher
from shared.errors import OverloadedError, ShedError


def test_requests_arriving_during_a_batch_share_the_next_one() -> None:
    sizes: list[int] = []
    release = threading.Event()

    def run(items: list[int]) -> list[int]:
        if not sizes:
            release.wait(5)  # hold the first batch until the others have queued
        sizes.append(len(items))
        return [item * 10 for item in items]

    async def scenario() -> list[list[int]]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=8, executor=executor)
            first = asyncio.create_task(batcher.submit([0]))
            await asyncio.sleep(0.05)
            rest = [asyncio.create_task(batcher.submit([i, i])) for i in range(1, 6)]
            await asyncio.sleep(0.05)
            release.set()
            return await asyncio.gather(first, *rest)

    answers = asyncio.run(scenario())
    assert answers[0] == [0] and answers[3] == [30, 30], "each caller gets its own slice"
    assert sizes == [1, 8, 2], "requests are never split; batches fill up to the limit"


def test_a_failing_batch_fails_only_its_callers() -> None:
    def run(items: list[int]) -> list[int]:
        if -1 in items:
            raise RuntimeError("bad batch")
        time.sleep(0.01)
        return items

    async def scenario() -> tuple[BaseException | list[int], ...]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=1, executor=executor)
            return tuple(
                await asyncio.gather(
                    batcher.submit([-1]), batcher.submit([2]), return_exceptions=True
                )
            )

    failed, served = asyncio.run(scenario())
    assert isinstance(failed, RuntimeError) and served == [2]


def test_one_bad_request_in_a_batch_fails_alone() -> None:
    calls: list[list[int]] = []
    release = threading.Event()

    def run(items: list[int]) -> list[int]:
        if not calls:
            release.wait(5)
        calls.append(list(items))
        if -1 in items:
            raise ValueError("input X contains infinity")
        return [item * 10 for item in items]

    async def scenario() -> list[BaseException | list[int]]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=8, executor=executor)
            first = asyncio.create_task(batcher.submit([0]))
            await asyncio.sleep(0.05)
            queued = [asyncio.create_task(batcher.submit(x)) for x in ([1], [-1, 2], [3])]
            await asyncio.sleep(0.05)
            release.set()
            return list(await asyncio.gather(first, *queued, return_exceptions=True))

    answers = asyncio.run(scenario())
    assert answers[0] == [0] and answers[1] == [10] and answers[3] == [30]
    assert isinstance(answers[2], ValueError), "only the request that broke the call fails"
    assert calls == [[0], [1, -1, 2, 3], [1], [-1, 2], [3]]


def test_a_lone_request_runs_at_once() -> None:
    async def scenario() -> float:
        with ThreadPoolExecutor(1) as executor:
            batcher: MicroBatcher[str, str] = MicroBatcher(
                lambda items: items, max_batch_size=64, executor=executor
            )
            started = time.perf_counter()
            assert await batcher.submit(["x"]) == ["x"]
            return time.perf_counter() - started

    assert asyncio.run(scenario()) == pytest.approx(0.0, abs=0.5), "no cork timer to wait out"


def test_a_request_queued_past_the_bound_fails_instead_of_running_late() -> None:
    release = threading.Event()

    def run(items: list[int]) -> list[int]:
        release.wait(5)
        return items

    async def scenario() -> tuple[BaseException | list[int], ...]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=4, executor=executor, max_wait_s=0.05)
            first = asyncio.create_task(batcher.submit([1]))
            await asyncio.sleep(0.01)
            late = asyncio.create_task(batcher.submit([2]))
            await asyncio.sleep(0.2)  # the second request is now past its bound
            release.set()
            return tuple(await asyncio.gather(first, late, return_exceptions=True))

    first, late = asyncio.run(scenario())
    assert first == [1] and isinstance(late, OverloadedError)


def test_work_that_cannot_make_the_bound_is_shed_on_arrival_with_a_retry_hint() -> None:
    def run(items: list[int]) -> list[int]:
        time.sleep(0.02 * len(items))  # a full batch of 4 takes 80 ms
        return items

    async def scenario() -> tuple[list[BaseException | list[int]], float | None]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=4, executor=executor, max_wait_s=0.2)
            await batcher.submit([0, 1, 2, 3])  # times a full batch
            # 20 queued items are 5 batches, about 0.4 s: the last ones cannot make it.
            tasks = [asyncio.create_task(batcher.submit([i])) for i in range(20)]
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            return list(outcomes), batcher.batch_seconds

    outcomes, batch_seconds = asyncio.run(scenario())
    shed = [o for o in outcomes if isinstance(o, ShedError)]
    served = [o for o in outcomes if isinstance(o, list)]
    assert batch_seconds is not None and 0.05 < batch_seconds < 0.5
    assert shed and served, "the head of the queue is served, the excess refused"
    assert outcomes.index(shed[0]) > max(i for i, o in enumerate(outcomes) if o in served)
    assert all(error.retry_after_s > 0 for error in shed)


def test_a_queue_that_full_batches_clear_in_time_is_not_shed() -> None:
    """Timed on a lone request, the batcher must not assume every queued item costs that."""

    def run(items: list[int]) -> list[int]:
        time.sleep(0.03)  # a batch costs the same whatever its size, as on a GPU
        return items

    async def scenario() -> list[list[int]]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=64, executor=executor, max_wait_s=0.2)
            await batcher.submit([0])  # one item took 30 ms
            # 63 more at 30 ms each would be 1.9 s; as one batch they take 30 ms.
            return list(await asyncio.gather(*(batcher.submit([i]) for i in range(63))))

    assert len(asyncio.run(scenario())) == 63


def test_nothing_is_shed_before_throughput_is_known_or_without_a_bound() -> None:
    def run(items: list[int]) -> list[int]:
        time.sleep(0.01)
        return items

    async def scenario(max_wait_s: float | None) -> list[list[int]]:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=2, executor=executor, max_wait_s=max_wait_s)
            return list(await asyncio.gather(*(batcher.submit([i]) for i in range(10))))

    assert len(asyncio.run(scenario(None))) == 10
    assert len(asyncio.run(scenario(5.0))) == 10


def test_batchers_sharing_one_thread_take_turns() -> None:
    order: list[str] = []
    release = threading.Event()

    def scorer(name: str) -> Callable[[list[int]], list[int]]:
        def run(items: list[int]) -> list[int]:
            if not order:
                release.wait(5)
            order.append(name)
            return items

        return run

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            champion = MicroBatcher(scorer("champion"), max_batch_size=1, executor=executor)
            challenger = MicroBatcher(scorer("challenger"), max_batch_size=1, executor=executor)
            held = asyncio.create_task(champion.submit([0]))
            await asyncio.sleep(0.05)
            queued = [asyncio.create_task(champion.submit([i])) for i in range(1, 4)]
            queued += [asyncio.create_task(challenger.submit([i])) for i in range(3)]
            await asyncio.sleep(0.05)
            release.set()
            await asyncio.gather(held, *queued)

    asyncio.run(scenario())
    assert order[:2] == ["champion", "challenger"], "a busy batcher does not starve the other"
    assert order.count("champion") == 4 and order.count("challenger") == 3


def test_each_batch_is_reported_with_its_size_and_its_seconds_in_the_model() -> None:
    heard: list[tuple[int, float]] = []

    def run(items: list[int]) -> list[int]:
        time.sleep(0.05)
        return items

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(
                run, max_batch_size=8, executor=executor, on_batch=lambda n, s: heard.append((n, s))
            )
            await batcher.submit([1, 2, 3])

    asyncio.run(scenario())
    assert len(heard) == 1 and heard[0][0] == 3
    assert 0.04 < heard[0][1] < 0.5


def _closed_loop_sizes(linger: float, clients: int, rounds: int) -> list[int]:
    """Batch sizes ``clients`` callers form, each sending again as soon as it is answered,
    with a model whose batch takes 20 ms whatever its size. Half the callers start once the
    first half's batch is running: signalled from the model, not timed with a sleep, so a
    loaded machine (CI stalled the loop past the first batch once) cannot merge the halves."""
    sizes: list[int] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        first_batch_running = asyncio.Event()

        def run(items: list[int]) -> list[int]:
            loop.call_soon_threadsafe(first_batch_running.set)
            time.sleep(0.02)
            sizes.append(len(items))
            return items

        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=64, executor=executor, linger=linger)

            async def caller(late: bool) -> None:
                if late:
                    await first_batch_running.wait()
                for _ in range(rounds):
                    await batcher.submit([1])

            await asyncio.gather(*(caller(late=i % 2 == 0) for i in range(clients)))

    asyncio.run(scenario())
    return sizes


def test_lingering_lets_closed_loop_callers_form_one_full_batch() -> None:
    without = _closed_loop_sizes(0.0, clients=16, rounds=6)
    assert max(without[2:]) <= 8, f"two alternating half batches without lingering: {without}"
    lingering = _closed_loop_sizes(0.5, clients=16, rounds=6)
    # The first batch holds the first half; the last, the half that started first.
    assert lingering[1:-1] == [16] * (len(lingering) - 2), lingering


def test_lingering_waits_at_most_its_share_of_a_batch_for_callers_that_do_not_return() -> None:
    seconds: list[float] = []

    def run(items: list[int]) -> list[int]:
        time.sleep(0.02)
        return items

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run, max_batch_size=8, executor=executor, linger=0.5)
            first = asyncio.create_task(batcher.submit([1]))
            await asyncio.sleep(0.005)
            second = asyncio.create_task(batcher.submit([2]))  # queued behind the first
            await first
            started = time.monotonic()
            await second  # waits for the first caller (which never returns), then runs
            seconds.append(time.monotonic() - started)

    asyncio.run(scenario())
    assert 0.025 <= seconds[0] < 0.2, seconds


def test_linger_is_a_share_of_a_batch() -> None:
    with ThreadPoolExecutor(1) as executor, pytest.raises(ValueError, match="linger"):
        MicroBatcher(lambda items: items, max_batch_size=8, executor=executor, linger=2.0)
