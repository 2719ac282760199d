"""The split topology's pieces without BentoML: topology and worker defaults, the runner's
versions and merged batches, and how its refusals reach the front."""

from __future__ import annotations

import asyncio
import sys
import threading
from http import HTTPStatus

import aiohttp
import numpy as np
import pytest
from bentoml.exceptions import BentoMLException

from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.text_runner import (
    RunnerClassifier,
    RunnerCore,
    RunnerModel,
    front_workers,
    model_threads,
    resolve_topology,
    runner_batch_size,
    runner_error,
    runner_workers,
    use_gil_switch_interval,
)
from shared.errors import OverloadedError, ShedError
from tests.fakes.serving import FakeLoader, FakeScorer, loaded


def test_topology_is_the_setting_and_single_by_default() -> None:
    assert resolve_topology(TextServingSettings(), has_cuda=False) == "single"
    assert resolve_topology(TextServingSettings(), has_cuda=True) == "single"
    assert resolve_topology(TextServingSettings(topology="split"), has_cuda=False) == "split"


def test_worker_counts_follow_cores_and_gpus() -> None:
    assert front_workers(TextServingSettings(), "single", cores=16) == 1
    assert front_workers(TextServingSettings(), "split", cores=16) == 8, "capped at 8"
    assert front_workers(TextServingSettings(gpus=2), "split", cores=4) == 2
    assert front_workers(TextServingSettings(), "split", cores=1) == 1
    assert front_workers(TextServingSettings(workers=3), "split", cores=16) == 3
    assert runner_workers(TextServingSettings()) == 2  # CPU: one scores while one restarts
    assert runner_workers(TextServingSettings(gpus=2)) == 2
    assert runner_workers(TextServingSettings(gpus=2, runner_workers=1)) == 1


def test_model_copies_share_the_cores_unless_threads_are_set() -> None:
    settings = TextServingSettings()
    assert model_threads(settings, workers=1, cores=2, machine_cores=2) == 0, "torch's default"
    assert model_threads(settings, workers=2, cores=2, machine_cores=2) == 1
    assert model_threads(settings, workers=3, cores=16, machine_cores=16) == 5
    assert model_threads(settings, workers=4, cores=2, machine_cores=2) == 1
    assert model_threads(TextServingSettings(torch_threads=2), 2, cores=2, machine_cores=2) == 2


def test_one_copy_on_limited_cpus_gets_their_count_not_the_machines() -> None:
    # A pod limited to 2 CPUs on a 32-core node: torch's and ONNX Runtime's defaults would
    # start a compute thread per node core.
    settings = TextServingSettings()
    assert model_threads(settings, workers=1, cores=2, machine_cores=32) == 2
    assert model_threads(settings, workers=2, cores=2, machine_cores=32) == 1
    assert model_threads(settings, workers=1, cores=4, machine_cores=None) == 0
    assert model_threads(TextServingSettings(torch_threads=8), 1, 2, machine_cores=32) == 8


def test_the_gil_switch_interval_is_the_setting_and_zero_leaves_pythons() -> None:
    before = sys.getswitchinterval()
    try:
        use_gil_switch_interval(TextServingSettings())
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        use_gil_switch_interval(TextServingSettings(gil_switch_ms=2))
        assert sys.getswitchinterval() == pytest.approx(0.002)
        use_gil_switch_interval(TextServingSettings(gil_switch_ms=0))
        assert sys.getswitchinterval() == pytest.approx(0.002), "0 leaves it as it is"
    finally:
        sys.setswitchinterval(before)


def test_runner_batches_are_larger_on_a_gpu() -> None:
    assert runner_batch_size(TextServingSettings(max_batch_size=64), has_cuda=False) == 64
    assert runner_batch_size(TextServingSettings(max_batch_size=64), has_cuda=True) == 256
    settings = TextServingSettings(runner_max_batch_size=100)
    assert runner_batch_size(settings, has_cuda=True) == 100


def _error(status: HTTPStatus) -> BentoMLException:
    error = BentoMLException("busy")
    error.error_code = status
    return error


def test_runner_refusals_become_the_fronts_own() -> None:
    assert isinstance(runner_error(_error(HTTPStatus.TOO_MANY_REQUESTS)), ShedError)
    unavailable = runner_error(_error(HTTPStatus.SERVICE_UNAVAILABLE))
    assert isinstance(unavailable, OverloadedError) and not isinstance(unavailable, ShedError)
    other = _error(HTTPStatus.INTERNAL_SERVER_ERROR)
    assert runner_error(other) is other


def test_a_runner_that_is_gone_is_a_503_not_a_500() -> None:
    def gone(name: str, **kwargs: object) -> object:
        raise aiohttp.ServerDisconnectedError()  # the runner was killed mid-call

    model = RunnerModel(
        tag="m:1",
        version="1",
        classes=["neg", "pos"],
        device="cpu",
        backend={},
        forward_max_texts=None,
        forward_max_tokens=None,
        warmup_batch_ms={},
        warmup_seconds=None,
    )
    classifier = RunnerClassifier(gone, model)  # type: ignore[arg-type]
    with pytest.raises(OverloadedError, match="model runner unavailable") as refused:
        classifier.predict_proba(["a text"])
    assert not isinstance(refused.value, ShedError), "503 + Retry-After, not a 429"


def _core(loader: FakeLoader, idle_evict_s: float = 600.0, max_wait_s: float = 5.0) -> RunnerCore:
    return RunnerCore(loader, max_batch_size=64, max_wait_s=max_wait_s, idle_evict_s=idle_evict_s)


def test_micro_batches_of_several_fronts_are_merged_per_tag() -> None:
    gate = threading.Event()
    scorer = FakeScorer(answer=1, gate=gate)
    loader = FakeLoader({"m:1": loaded("1", scorer)})
    core = _core(loader)
    core.ensure("m:1")

    async def fronts() -> list[np.ndarray]:
        first = asyncio.create_task(core.score("m:1", ["a"]))
        await asyncio.sleep(0.05)  # the first batch is in flight, held by the gate
        rest = [asyncio.create_task(core.score("m:1", ["b"] * 8)) for _ in range(3)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *rest)

    answers = asyncio.run(fronts())
    assert [a.shape for a in answers] == [(1, 2), (8, 2), (8, 2), (8, 2)]
    assert all(np.allclose(a[:, 1], 0.9) for a in answers)
    assert scorer.batches == [1, 24], "the three micro-batches queued behind ran as one"
    stats = core.stats()
    assert (stats.calls, stats.batches, stats.items, stats.mean_batch) == (4, 2, 25, 12.5)
    assert loader.loads == ["m:1"], "a held version is not loaded again"


def test_an_idle_version_is_dropped_when_another_loads_and_reloaded_when_asked() -> None:
    loader = FakeLoader({"m:1": loaded("1"), "m:2": loaded("2")})
    core = _core(loader, idle_evict_s=0.01)
    core.ensure("m:1")
    asyncio.run(asyncio.sleep(0.05))
    core.ensure("m:2")
    assert core.stats().loaded == ["m:2"]
    answer = asyncio.run(core.score("m:1", ["x"]))
    assert answer.shape == (1, 2)
    assert loader.loads == ["m:1", "m:2", "m:1"]


def test_a_version_in_use_is_kept() -> None:
    loader = FakeLoader({"m:1": loaded("1"), "m:2": loaded("2")})
    core = _core(loader, idle_evict_s=60.0)
    core.ensure("m:1")
    core.ensure("m:2")
    assert core.stats().loaded == ["m:1", "m:2"]


def test_a_broken_load_is_reported_and_nothing_is_held() -> None:
    loader = FakeLoader({"m:1": RuntimeError("no weights")})
    core = _core(loader)
    with pytest.raises(RuntimeError, match="no weights"):
        core.ensure("m:1")
    assert core.stats().loaded == []
