"""The report's verdicts: accuracy is judged only on enough labels, drift only with the
version's contract and enough rows, each (variant, version) on its own."""

from __future__ import annotations

from application.monitoring.monitor_report import ReportThresholds, build_monitor_report
from domain.monitoring.drift import DriftConfig
from domain.monitoring.drift_inputs import drift_values
from domain.monitoring.prediction_log import PredictionRecord
from tests.fakes.registry import fake_contract


def _records(version: str, variant: str, count: int, correct: int) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            request_id=f"{variant}{version}-{i}",
            at=1000.0 + i,
            model="m",
            version=version,
            variant=variant,
            endpoint="classify",
            inputs="a text",
            label="a",
            probabilities={"a": 0.9, "b": 0.1},
            latency_ms=10.0 + i,
            actual="a" if i < correct else "b",
            labelled_at=2000.0,
        )
        for i in range(count)
    ]


def test_accuracy_is_flagged_only_with_enough_labels_and_per_version() -> None:
    records = _records("1", "champion", 120, correct=60) + _records("2", "challenger", 20, 0)
    report = build_monitor_report(
        "m", records, {}, drift_values, 0.0, 5000.0, DriftConfig(), ReportThresholds()
    )
    by_version = {g.version: g for g in report.groups}
    assert by_version["1"].accuracy == 0.5 and by_version["1"].flags
    assert by_version["2"].accuracy == 0.0 and not by_version["2"].flags, "20 labels: too few"
    assert report.flags == ["v1 (champion): accuracy 0.500 on 120 labels < 0.800"]
    assert "not in the model store" in (by_version["1"].drift_note or "")
    assert by_version["1"].latency.p50_ms is not None and by_version["1"].hours


def test_drift_needs_the_contract_and_a_window() -> None:
    contract = fake_contract(("a", "b"))
    few = _records("1", "champion", 5, correct=5)
    report = build_monitor_report(
        "m", few, {"1": contract}, drift_values, 0.0, 5000.0, DriftConfig(), ReportThresholds()
    )
    assert report.groups[0].drift is None and "fewer than" in (report.groups[0].drift_note or "")
