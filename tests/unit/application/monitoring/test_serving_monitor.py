from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from application.monitoring.prediction_recorder import PredictionRecorder
from application.monitoring.serving_monitor import (
    ServingMonitor,
    error_kind,
    new_request_id_array,
    new_request_ids,
)
from domain.monitoring.drift import DriftConfig
from domain.monitoring.prediction_log import LogKey
from domain.monitoring.profile import CategoricalProfile, ReferenceProfile, profile_numeric
from domain.serving.model import DriftValues
from infrastructure.monitoring.sqlite_prediction_log import SqlitePredictionLog
from tests.fakes.metrics import RecordingMetrics

RNG = np.random.default_rng(11)


def drift_values(rows: Sequence[Any]) -> DriftValues:
    """Rows are (x, colour), as a tabular scorer sees them; None is a gap."""
    x = np.asarray([np.nan if r[0] is None else float(r[0]) for r in rows], dtype=float)
    return {"x": x}, {"colour": [r[1] for r in rows]}


@pytest.fixture
def recorder(tmp_path: Path) -> PredictionRecorder:
    return PredictionRecorder(SqlitePredictionLog(tmp_path / "predictions.db"))


@pytest.fixture
def make_monitor(
    recorder: PredictionRecorder,
) -> Callable[..., ServingMonitor]:
    def build(
        metrics: RecordingMetrics, drift_every: int = 50, background: Any = None
    ) -> ServingMonitor:
        profile = ReferenceProfile(
            rows=2000,
            numeric={"x": profile_numeric(RNG.normal(0.0, 1.0, 2000))},
            categorical={"colour": CategoricalProfile(frequencies={"red": 0.5, "blue": 0.5})},
            class_prior={"a": 0.5, "b": 0.5},
        )
        return ServingMonitor(
            LogKey("m", "champion", "1"),
            profile,
            ["a", "b"],
            metrics,
            DriftConfig(),
            recorder,
            drift_values,
            window=300,
            drift_every=drift_every,
            feedback_window=10,
            background=background,
        )

    return build


def observe_rows(
    monitor: ServingMonitor,
    rows: list[tuple[Any, Any]],
    labels: Sequence[str] | None = None,
    latencies_ms: Sequence[float] | None = None,
    confidence: float = 0.8,
) -> list[str]:
    labels = list(labels) if labels is not None else list(RNG.choice(["a", "b"], len(rows)))
    probabilities = [
        {"a": confidence, "b": 1 - confidence}
        if label == "a"
        else {"a": 1 - confidence, "b": confidence}
        for label in labels
    ]
    return monitor.observe(
        "classify", rows, labels, probabilities, latencies_ms, drift_values(rows)
    )


def _observe(monitor: ServingMonitor, shift: float, rows: int = 100) -> list[str]:
    xs = RNG.normal(shift, 1.0, rows)
    colours = RNG.choice(["red", "blue"], rows)
    return observe_rows(monitor, [(float(x), str(c)) for x, c in zip(xs, colours, strict=True)])


def test_drift_is_refreshed_every_n_rows_and_detects_a_shift(
    make_monitor: Callable[..., ServingMonitor], recorder: PredictionRecorder
) -> None:
    metrics = RecordingMetrics()
    monitor = make_monitor(metrics, drift_every=100)
    _observe(monitor, shift=0.0, rows=99)
    assert metrics.drift is None, "not due yet"
    recorder.flush()
    _observe(monitor, shift=0.0, rows=1)
    recorder.flush()
    monitor.refresh_drift()  # the refresh read the log before this batch was written
    assert metrics.drift is not None
    calm = {d.feature: d for d in metrics.drift[0]}
    assert not calm["x"].drifted and not calm["colour"].drifted

    for _ in range(3):
        _observe(monitor, shift=2.0)
        recorder.flush()
    monitor.refresh_drift()
    moved = {d.feature: d for d in metrics.drift[0]}
    assert moved["x"].drifted and metrics.drift[1] == 0.5
    assert monitor.stats().drift.window == 300


def test_a_background_refresh_leaves_the_batch_path_and_is_queued_once(
    make_monitor: Callable[..., ServingMonitor], recorder: PredictionRecorder
) -> None:
    metrics = RecordingMetrics()
    queued: list[Callable[[], object]] = []
    monitor = make_monitor(metrics, drift_every=100, background=queued.append)
    for _ in range(3):
        _observe(monitor, shift=0.0)
    recorder.flush()
    assert metrics.drift is None, "nothing computed on the observing thread"
    assert len(queued) == 1, "a refresh already queued is not queued again"
    queued.pop()()
    assert metrics.drift is not None
    _observe(monitor, shift=0.0)
    assert len(queued) == 1, "due again once the last refresh ran"


def test_a_closed_background_falls_back_to_refreshing_inline(
    make_monitor: Callable[..., ServingMonitor], recorder: PredictionRecorder
) -> None:
    metrics = RecordingMetrics()

    def closed(_: Callable[[], object]) -> object:
        raise RuntimeError("cannot schedule new futures after shutdown")

    monitor = make_monitor(metrics, drift_every=100, background=closed)
    _observe(monitor, shift=0.0)
    recorder.flush()
    _observe(monitor, shift=0.0)
    assert metrics.drift is not None
    metrics.drift = None
    _observe(monitor, shift=0.0)
    assert metrics.drift is not None, "not stuck as queued after the fallback"


def test_stats_count_predictions_latency_and_errors(
    make_monitor: Callable[..., ServingMonitor],
) -> None:
    monitor = make_monitor(RecordingMetrics())
    _observe(monitor, shift=0.0, rows=8)
    observe_rows(monitor, [(0.1, "red"), (0.2, "blue")], latencies_ms=[10.0, 30.0])
    monitor.record_request("classify", 200, 0.010)
    monitor.record_request("classify", 400, 0.001)
    monitor.record_request("classify", 413, 0.001)

    stats = monitor.stats()
    assert stats.predictions == 10 == sum(stats.by_class.values())
    assert stats.mean_confidence == pytest.approx(0.8)
    assert stats.latency.count == 2 and stats.latency.p50_ms == pytest.approx(20.0)
    assert stats.errors == {"invalid_input": 1, "payload_too_large": 1}
    assert stats.drift.window == 0, "below min_window no drift is reported"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_input"),
        (404, "not_found"),
        (413, "payload_too_large"),
        (429, "overloaded"),
        (503, "unavailable"),
        (418, "client_error"),
        (500, "internal"),
    ],
)
def test_error_kinds_are_a_fixed_set(status: int, kind: str) -> None:
    assert error_kind(status) == kind


def test_cache_lookups_are_counted_in_stats_and_metrics(
    make_monitor: Callable[..., ServingMonitor],
) -> None:
    metrics = RecordingMetrics()
    monitor = make_monitor(metrics)
    monitor.record_cache(hits=3, misses=1)
    monitor.record_cache(hits=0, misses=2)
    stats = monitor.stats()
    assert (stats.cache_hits, stats.cache_misses) == (3, 3)
    assert metrics.cache == [(3, 1), (0, 2)]


def test_missing_values_are_counted_and_kept_out_of_the_value_windows(
    make_monitor: Callable[..., ServingMonitor],
) -> None:
    metrics = RecordingMetrics()
    monitor = make_monitor(metrics, drift_every=1000)
    rows = 100
    x: list[float | None] = [None] * 40 + [float(v) for v in RNG.normal(0.0, 1.0, rows - 40)]
    colours: list[str | None] = [None] * 10 + list(RNG.choice(["red", "blue"], rows - 10))
    observe_rows(monitor, list(zip(x, colours, strict=True)))

    assert metrics.missing == {"x": 40, "colour": 10}
    drift = monitor.stats().drift
    numeric = {d.feature: d for d in drift.features}
    assert numeric["x"].window == 60, "KS runs on the 60 values present, not on NaN"
    assert not numeric["x"].drifted
    gaps = {m.feature: m for m in drift.missing}
    # Training had no gaps (profile rate 0): any live gap is a change the imputer hides.
    assert gaps["x"].rate == pytest.approx(0.4) and gaps["x"].reference_rate == 0.0
    assert gaps["x"].drifted and gaps["colour"].drifted
    assert metrics.missing_rates == {"x": pytest.approx(0.4), "colour": pytest.approx(0.1)}


def test_a_missing_rate_like_trainings_is_not_drift() -> None:
    from domain.monitoring.drift import missing_drift

    config = DriftConfig()
    assert not missing_drift("age", 0.2, 21, 100, config).drifted
    assert missing_drift("age", 0.2, 45, 100, config).drifted
    assert not missing_drift("age", 0.0, 0, 100, config).drifted
    assert not missing_drift("age", 0.0, 3, 10, config).drifted, "below min_window"


def test_a_window_of_only_missing_values_is_not_scored_for_drift(
    make_monitor: Callable[..., ServingMonitor],
) -> None:
    metrics = RecordingMetrics()
    monitor = make_monitor(metrics, drift_every=1000)
    rows = 300
    observe_rows(monitor, [(None, None)] * rows, labels=["a"] * rows, confidence=0.9)

    drift = monitor.stats().drift

    assert drift.features == [], "nothing arrived to compare"
    assert {m.feature: m.rate for m in drift.missing} == {"x": 1.0, "colour": 1.0}


def test_drift_is_refreshed_at_most_once_per_interval(
    recorder: PredictionRecorder,
) -> None:
    queued: list[Callable[[], object]] = []
    monitor = ServingMonitor(
        LogKey("m", "champion", "1"),
        ReferenceProfile(rows=10, numeric={}, categorical={}, class_prior={"a": 0.5, "b": 0.5}),
        ["a", "b"],
        RecordingMetrics(),
        DriftConfig(),
        recorder,
        drift_values,
        drift_every=10,
        background=queued.append,
        drift_min_interval_s=3600,
    )
    observe_rows(monitor, [(0.0, "red")] * 10)
    queued.pop()()  # the first refresh runs at once
    for _ in range(4):
        observe_rows(monitor, [(0.0, "red")] * 10)
    # One more refresh, deferred to the end of the interval (not run here: it would wait
    # the hour), and none queued behind it; the rows since are counted for the next.
    assert len(queued) == 1, "one deferred refresh, not one per batch"
    assert monitor._refreshed_at > time.monotonic() + 3000
    assert monitor._rows_since_drift == 30


def test_request_ids_follow_the_clock_so_the_log_appends_at_its_index_end() -> None:
    earlier = new_request_ids(50)
    time.sleep(0.002)
    later = [*new_request_ids(50), *new_request_id_array(50)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in [*earlier, *later])
    assert len(set(earlier + later)) == 150
    assert max(earlier) < min(later)
    assert abs(int(later[0][:12], 16) / 1000 - time.time()) < 5
