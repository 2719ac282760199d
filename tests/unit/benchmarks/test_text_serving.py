"""The text benchmark's 0.9x checks: judged against the raw model (torch, or int8 for the
int8 service) measured around the 64-client level when it was, else against the sweep."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from benchmarks.http_load import LevelResult
from benchmarks.text_serving import evaluate

RAW: dict[str, Any] = {"batches": {"32": {"rps": 150.0}, "64": {"rps": 200.0}}}


def _level(rps: float, server: str = "bentoml-batched") -> LevelResult:
    return LevelResult(
        server=server,
        clients=64,
        requests=1000,
        errors=0,
        seconds=5.0,
        rps=rps,
        p50_ms=300.0,
        p95_ms=350.0,
        p99_ms=400.0,
        error_statuses={},
    )


def _share_check(extras: dict[str, Any]) -> dict[str, Any]:
    checks = evaluate([_level(171.0)], RAW, extras, max_latency_ms=1000)
    return next(c for c in checks if c["name"].startswith("service@64 texts/s"))


def test_the_raw_rate_measured_around_the_level_is_the_judge() -> None:
    around = {"64": {"batch": 64, "rps_before": 185.0, "rps_after": 195.0, "rps": 190.0}}
    check = _share_check({"bentoml-batched": {"raw_around": around}})
    assert check["value"] == 0.9 and check["met"]
    assert "measured around the level" in check["name"]


def test_without_it_the_sweeps_best_batch_is() -> None:
    check = _share_check({})
    assert check["value"] == 0.855 and not check["met"]
    assert "before and after the sweep" in check["name"]


def _int8_check(extras: dict[str, Any]) -> dict[str, Any]:
    raw = {**RAW, "backends": {"onnx-int8": {"batches": {"64": {"rps": 1000.0}}}}}
    levels = [_level(171.0), _level(540.0, "bentoml-onnx-int8")]
    checks = evaluate(levels, raw, extras, max_latency_ms=1000)
    return next(c for c in checks if c["name"].startswith("int8 service@64 / int8 raw"))


def test_int8_is_judged_against_its_own_raw_rate_around_its_level() -> None:
    around = {"64": {"batch": 64, "rps_before": 580.0, "rps_after": 620.0, "rps": 600.0}}
    check = _int8_check({"bentoml-onnx-int8": {"raw_around": around}})
    assert check["value"] == 0.9 and check["met"]
    assert "measured around the level" in check["name"]
    swept = _int8_check({"bentoml-batched": {"raw_around": around}})  # torch's: not int8's
    assert swept["value"] == 0.54 and not swept["met"]
    assert "from the sweep" in swept["name"]


def _gpu_check(levels: list[LevelResult], device: str = "cuda") -> dict[str, Any] | None:
    checks = evaluate(levels, {**RAW, "device": device}, {}, max_latency_ms=1000)
    return next((c for c in checks if c["name"].startswith("GPU:")), None)


def test_on_a_gpu_the_best_clean_level_of_either_topology_is_judged_against_5000_rps() -> None:
    # Given the split topology at 5,400 rps with 0 errors, the single worker at 1,150
    split = _level(5400.0, "bentoml-split")
    check = _gpu_check([_level(1150.0), split])
    assert check is not None and check["value"] == 5400.0 and check["met"]
    # A level with errors, or a p99 over twice the bound, does not count
    failing = [_level(1150.0), replace(split, errors=3)]
    slow = [_level(1150.0), replace(split, p99_ms=2500.0)]
    for levels in (failing, slow):
        check = _gpu_check(levels)
        assert check is not None and check["value"] == 1150.0 and not check["met"]


def test_on_a_cpu_there_is_no_gpu_check() -> None:
    assert _gpu_check([_level(171.0)], device="cpu") is None
