"""``mlops monitor report``: what the prediction log says about a model over a time window.

Per (variant, version): traffic, the predicted-class distribution, confidence, latency,
accuracy from feedback, and drift of the whole window from the version's training profile
with the same statistics the service's gauges use (:func:`compute_drift`). The report is
flagged when drift or accuracy crosses its thresholds, which makes the CLI exit 1 (a
scheduled job can retrain on it).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from application.monitoring.serving_monitor import DriftReport, LatencySummary, compute_drift
from domain.models.contract import ServingContract
from domain.monitoring.drift import DriftConfig
from domain.monitoring.prediction_log import PredictionRecord
from domain.serving.model import DriftValues

HOUR_S = 3600.0


class ReportThresholds(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_drifted_share: float = Field(
        default=0.2, ge=0.0, le=1.0, description="flag a version whose drifted share is above"
    )
    min_accuracy: float = Field(default=0.8, ge=0.0, le=1.0)
    min_labels: int = Field(default=100, ge=1, description="labels needed to judge accuracy")


class HourFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: float
    predictions: int
    labelled: int
    correct: int


class GroupReport(BaseModel):
    """One version as one variant served it."""

    model_config = ConfigDict(frozen=True)

    variant: str
    version: str
    predictions: int
    by_class: dict[str, int]
    mean_confidence: float | None
    latency: LatencySummary
    labelled: int
    accuracy: float | None
    drift: DriftReport | None = Field(description="None: no contract, or too few rows")
    drift_note: str | None = None
    hours: list[HourFigures]
    flags: list[str]


class MonitorReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    since: float
    until: float
    records: int
    thresholds: ReportThresholds
    groups: list[GroupReport]

    @property
    def flags(self) -> list[str]:
        return [flag for group in self.groups for flag in group.flags]


def _latency(records: Sequence[PredictionRecord]) -> LatencySummary:
    values = np.asarray([r.latency_ms for r in records if r.latency_ms is not None], dtype=float)
    if not values.size:
        return LatencySummary(count=0, p50_ms=None, p95_ms=None, p99_ms=None)
    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
    return LatencySummary(count=int(values.size), p50_ms=p50, p95_ms=p95, p99_ms=p99)


def _hours(records: Sequence[PredictionRecord]) -> list[HourFigures]:
    buckets: defaultdict[float, Counter[str]] = defaultdict(Counter)
    for record in records:
        bucket = buckets[record.at // HOUR_S * HOUR_S]
        bucket["predictions"] += 1
        if record.actual is not None:
            bucket["labelled"] += 1
            bucket["correct"] += int(record.actual == record.label)
    return [
        HourFigures(start=start, **{k: counts[k] for k in ("predictions", "labelled", "correct")})
        for start, counts in sorted(buckets.items())
    ]


def _group(
    variant: str,
    version: str,
    records: Sequence[PredictionRecord],
    contract: ServingContract | None,
    drift_values: Callable[[ServingContract, Sequence[Any]], DriftValues],
    config: DriftConfig,
    thresholds: ReportThresholds,
) -> GroupReport:
    labelled = [r for r in records if r.actual is not None]
    accuracy = sum(r.actual == r.label for r in labelled) / len(labelled) if labelled else None
    drift: DriftReport | None = None
    note: str | None = None
    if contract is None:
        note = f"version {version} is not in the model store: no training profile to compare"
    elif len(records) < config.min_window:
        note = f"{len(records)} rows, fewer than the {config.min_window} drift needs"
    else:
        drift = compute_drift(
            contract.reference_profile,
            drift_values(contract, [r.inputs for r in records]),
            [r.label for r in records],
            config,
        )
    flags = []
    name = f"v{version} ({variant})"
    if drift is not None and drift.drifted_share > thresholds.max_drifted_share:
        drifted = ", ".join(d.feature for d in drift.features if d.drifted)
        flags.append(
            f"{name}: drifted features {drifted} (share {drift.drifted_share:.2f} > "
            f"{thresholds.max_drifted_share:.2f})"
        )
    if (
        accuracy is not None
        and len(labelled) >= thresholds.min_labels
        and accuracy < thresholds.min_accuracy
    ):
        flags.append(
            f"{name}: accuracy {accuracy:.3f} on {len(labelled)} labels < "
            f"{thresholds.min_accuracy:.3f}"
        )
    return GroupReport(
        variant=variant,
        version=version,
        predictions=len(records),
        by_class=dict(Counter(r.label for r in records)),
        mean_confidence=float(np.mean([r.confidence for r in records])) if records else None,
        latency=_latency(records),
        labelled=len(labelled),
        accuracy=accuracy,
        drift=drift,
        drift_note=note,
        hours=_hours(records),
        flags=flags,
    )


def build_monitor_report(
    model: str,
    records: Sequence[PredictionRecord],
    contracts: Mapping[str, ServingContract],
    drift_values: Callable[[ServingContract, Sequence[Any]], DriftValues],
    since: float,
    until: float,
    config: DriftConfig,
    thresholds: ReportThresholds,
) -> MonitorReport:
    """``contracts`` by version (those still in the store); the shadow is reported too."""
    grouped: defaultdict[tuple[str, str], list[PredictionRecord]] = defaultdict(list)
    for record in records:
        grouped[(record.variant, record.version)].append(record)
    groups = [
        _group(variant, version, rows, contracts.get(version), drift_values, config, thresholds)
        for (variant, version), rows in sorted(grouped.items())
    ]
    return MonitorReport(
        model=model,
        since=since,
        until=until,
        records=len(records),
        thresholds=thresholds,
        groups=groups,
    )
