"""The text benchmark's 0.9x check: judged against the raw model measured around the
64-client level when it was, else against the sweep's before-and-after runs."""

from __future__ import annotations

from typing import Any

from benchmarks.http_load import LevelResult
from benchmarks.text_serving import evaluate

RAW: dict[str, Any] = {"batches": {"32": {"rps": 150.0}, "64": {"rps": 200.0}}}


def _level(rps: float) -> LevelResult:
    return LevelResult(
        server="bentoml-batched",
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
