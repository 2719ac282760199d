"""Warm-up runs off the caller's thread; ready only once every batch size ran."""

from __future__ import annotations

import threading

from infrastructure.serving.warmup import Warmup


def test_not_ready_until_every_batch_size_ran() -> None:
    release = threading.Event()
    seen: list[int] = []

    def run_batch(size: int) -> None:
        release.wait(5)
        seen.append(size)

    warmup = Warmup(run_batch, [32, 1, 8, 8], rounds=2)
    warmup.start()
    assert not warmup.ready
    assert not warmup.wait(0.05)
    release.set()
    assert warmup.wait(5)
    assert seen == [1, 1, 8, 8, 32, 32], "ascending, duplicates once, each size per round"
    described = warmup.describe()
    assert described["ready"] is True and described["error"] is None
    assert set(described["last_round_ms"]) == {"1", "8", "32"}


def test_a_failing_warmup_keeps_the_service_unready() -> None:
    def run_batch(size: int) -> None:
        if size == 64:
            raise RuntimeError("CUDA out of memory")

    warmup = Warmup(run_batch, [1, 64], rounds=1)
    warmup.start()
    assert warmup.wait(5) is False
    assert warmup.error == "RuntimeError: CUDA out of memory"
    assert warmup.describe()["ready"] is False
