"""Route -> predict -> observe: variants answer by weight, each batch is scored by one
version, the shadow never touches live answers, feedback reaches the version that answered."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from application.inference.model_pool import ModelPool
from application.inference.serve_predictions import PredictionService
from application.monitoring.variant_monitors import VariantMonitors
from domain.serving.prediction import Prediction
from domain.serving.variants import TrafficSplit
from tests.fakes.serving import FakeScorer, loaded, variant_monitors


@pytest.fixture
def executors() -> Iterator[tuple[ThreadPoolExecutor, ThreadPoolExecutor]]:
    with ThreadPoolExecutor(1) as live, ThreadPoolExecutor(1) as shadow:
        yield live, shadow


def _service(
    pool: ModelPool,
    executors: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
    weight: float = 0.0,
) -> tuple[PredictionService, VariantMonitors]:
    monitors, _ = variant_monitors()
    service = PredictionService(
        pool, TrafficSplit(weight), monitors, executors[0], executors[1], max_batch_size=16
    )
    return service, monitors


async def _ask(service: PredictionService, keys: list[str]) -> list[Prediction]:
    answers = await asyncio.gather(*(service.predict("classify", [1.0], key) for key in keys))
    return [answer[0] for answer in answers]


def test_answers_carry_variant_and_version_and_follow_the_split(
    executors: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
) -> None:
    pool = ModelPool()
    pool.swap("champion", loaded("1", FakeScorer(answer=0)))
    pool.swap("challenger", loaded("2", FakeScorer(answer=1)))
    service, monitors = _service(pool, executors, weight=30.0)
    keys = [f"user-{i}" for i in range(300)]

    answers = asyncio.run(_ask(service, keys))

    for key, answer in zip(keys, answers, strict=True):
        expected = service.split.route(key)
        assert answer.variant == expected
        assert (answer.model_version, answer.label) == (
            ("2", "b") if expected == "challenger" else ("1", "a")
        )
    assert 0.2 < sum(a.variant == "challenger" for a in answers) / len(answers) < 0.4
    # Feedback is scored by the variant and version that answered.
    to_challenger = next(a for a in answers if a.variant == "challenger")
    attributed = monitors.feedback(to_challenger.request_id, "b")
    assert (attributed.variant, attributed.model_version) == ("challenger", "2")
    assert attributed.outcome.correct
    by_variant = {v.variant: v.stats for v in monitors.stats()}
    assert by_variant["challenger"].labelled == 1 and by_variant["champion"].labelled == 0


def test_without_a_challenger_every_key_goes_to_the_champion(
    executors: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
) -> None:
    pool = ModelPool()
    pool.swap("champion", loaded("1"))
    service, _ = _service(pool, executors, weight=100.0)
    assert {a.variant for a in asyncio.run(_ask(service, ["x", "y", "z"]))} == {"champion"}


def test_a_swap_waits_for_the_batch_in_flight_and_each_batch_has_one_version(
    executors: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
) -> None:
    gate = threading.Event()
    old = FakeScorer(answer=0, gate=gate)
    pool = ModelPool()
    pool.swap("champion", loaded("1", old))
    service, _ = _service(pool, executors)

    async def scenario() -> tuple[list[Prediction], list[Prediction]]:
        in_flight = asyncio.create_task(service.predict("classify", [1.0, 2.0], "k"))
        await asyncio.sleep(0.05)  # the first batch is running on version 1
        queued = asyncio.create_task(service.predict("classify", [3.0], "k"))
        pool.swap("champion", loaded("2", FakeScorer(answer=1)))
        gate.set()
        return await in_flight, await queued

    first, second = asyncio.run(scenario())
    assert {p.model_version for p in first} == {"1"}, "the batch in flight kept its version"
    assert {p.model_version for p in second} == {"2"}, "the next batch took the new one"


def test_a_slow_or_broken_shadow_changes_neither_answers_nor_latency(
    executors: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
) -> None:
    def timed(shadow: FakeScorer | None) -> tuple[list[str], float, VariantMonitors]:
        pool = ModelPool()
        pool.swap("champion", loaded("1", FakeScorer(answer=0)))
        if shadow is not None:
            pool.swap("shadow", loaded("9", shadow))
        service, monitors = _service(pool, executors)
        started = time.perf_counter()
        answers = asyncio.run(_ask(service, [f"k{i}" for i in range(20)]))
        return [a.label for a in answers], time.perf_counter() - started, monitors

    baseline, baseline_s, _ = timed(None)
    # A shadow far slower than the live path, so that a loaded CI machine's jitter cannot
    # pass for waiting on it.
    slow, slow_s, monitors = timed(FakeScorer(answer=1, delay_s=2.0))
    broken, _, broken_monitors = timed(FakeScorer(fail=True))

    assert slow == baseline == broken == ["a"] * 20
    assert slow_s < baseline_s + 1.5, "the live path never waits for the 2 s shadow"
    # Polled, not slept: the test is about the live path, not the shadow's speed.
    deadline = time.monotonic() + 10
    while monitors.shadow_stats().compared == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert monitors.shadow_stats().compared >= 1
    assert monitors.shadow_stats().agreement == 0.0, "the shadow disagrees on every row"
    while broken_monitors.shadow_stats().failed == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert broken_monitors.shadow_stats().failed >= 1


def test_batch_jobs_use_the_same_path_without_an_event_loop(
    executors: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
) -> None:
    pool = ModelPool()
    scorer = FakeScorer(answer=1)
    pool.swap("champion", loaded("3", scorer))
    service, monitors = _service(pool, executors)
    scored = service.score_batch("batch", [1.0, 2.0, 3.0])
    assert list(scored.labels) == ["b"] * 3 and scorer.batches == [3]
    assert len(set(scored.request_ids)) == 3 and scored.variant == "champion"
    assert {v.variant: v.stats.predictions for v in monitors.stats()} == {"champion": 3}
