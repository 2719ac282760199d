"""Data-quality report: schema, missing values, outliers, class balance.

Blocking findings stop a training run; warnings are recorded with it.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from domain.data.schema import FeatureSchema
from shared.errors import DataError


class Severity(StrEnum):
    WARNING = "warning"
    BLOCKING = "blocking"


class QualityThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_rows: int = Field(default=20, ge=1)
    # A feature missing in more than this share of rows blocks training.
    max_missing_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    warn_missing_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    # Share of values outside [Q1 - k*IQR, Q3 + k*IQR] that triggers a warning.
    iqr_multiplier: float = Field(default=1.5, gt=0.0)
    warn_outlier_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    max_outlier_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    # Largest class count divided by the smallest.
    warn_imbalance_ratio: float = Field(default=3.0, ge=1.0)
    max_imbalance_ratio: float = Field(default=50.0, ge=1.0)
    block_missing_target: bool = True


class QualityIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    check: str
    severity: Severity
    column: str | None
    message: str


class ColumnQuality(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    dtype: str
    kind: str
    missing_rate: float
    outlier_rate: float | None = None
    distinct: int


class QualityReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    columns: tuple[ColumnQuality, ...]
    class_counts: dict[str, int]
    imbalance_ratio: float
    issues: tuple[QualityIssue, ...]

    @property
    def blocking(self) -> list[QualityIssue]:
        return [issue for issue in self.issues if issue.severity is Severity.BLOCKING]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def raise_if_blocking(self) -> None:
        if self.blocking:
            details = "; ".join(issue.message for issue in self.blocking)
            raise DataError(f"data-quality check failed: {details}")


def iqr_outlier_rate(values: pd.Series, multiplier: float) -> float:
    """Share of non-missing values outside the Tukey fences."""
    present = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if present.size < 4:
        return 0.0
    q1, q3 = np.percentile(present, [25, 75])
    spread = q3 - q1
    low, high = q1 - multiplier * spread, q3 + multiplier * spread
    return float(np.mean((present < low) | (present > high)))


def _grade(
    check: str, column: str, value: float, warn_above: float, block_above: float, finding: str
) -> list[QualityIssue]:
    """No issue, a warning, or a blocking issue, by which threshold ``value`` exceeds."""
    if value > block_above:
        return [
            QualityIssue(
                check=check,
                severity=Severity.BLOCKING,
                column=column,
                message=f"{finding} (limit {block_above:g})",
            )
        ]
    if value > warn_above:
        return [
            QualityIssue(check=check, severity=Severity.WARNING, column=column, message=finding)
        ]
    return []


def assess_quality(
    frame: pd.DataFrame, schema: FeatureSchema, thresholds: QualityThresholds | None = None
) -> QualityReport:
    limits = thresholds or QualityThresholds()
    issues: list[QualityIssue] = []
    rows = len(frame)
    if rows < limits.min_rows:
        issues.append(
            QualityIssue(
                check="min_rows",
                severity=Severity.BLOCKING,
                column=None,
                message=f"only {rows} rows; at least {limits.min_rows} are required",
            )
        )
    issues.extend(
        QualityIssue(
            check="identifier",
            severity=Severity.WARNING,
            column=column.name,
            message=f"{column.name}: left out of the features, looks like an identifier "
            f"({column.reason}); list it in the dataset's features to keep it",
        )
        for column in schema.excluded
    )
    columns = []
    for spec in schema.features:
        series = frame[spec.name]
        missing = float(series.isna().mean()) if rows else 0.0
        outliers = None
        if spec.kind == "numeric":
            outliers = iqr_outlier_rate(series, limits.iqr_multiplier)
            issues.extend(
                _grade(
                    "outliers",
                    spec.name,
                    outliers,
                    limits.warn_outlier_rate,
                    limits.max_outlier_rate,
                    f"{spec.name}: {outliers:.1%} IQR outliers",
                )
            )
        issues.extend(
            _grade(
                "missing",
                spec.name,
                missing,
                limits.warn_missing_rate,
                limits.max_missing_rate,
                f"{spec.name}: {missing:.1%} missing",
            )
        )
        columns.append(
            ColumnQuality(
                name=spec.name,
                dtype=str(series.dtype),
                kind=str(spec.kind),
                missing_rate=missing,
                outlier_rate=outliers,
                distinct=int(series.nunique(dropna=True)),
            )
        )
    target = frame[schema.target]
    missing_target = int(target.isna().sum())
    if missing_target and limits.block_missing_target:
        issues.append(
            QualityIssue(
                check="missing_target",
                severity=Severity.BLOCKING,
                column=schema.target,
                message=f"{schema.target}: {missing_target} rows have no label",
            )
        )
    counts = target.dropna().astype(str).value_counts()
    class_counts = {str(k): int(v) for k, v in counts.sort_index().items()}
    ratio = float(counts.max() / counts.min()) if len(counts) else float("inf")
    issues.extend(
        _grade(
            "class_imbalance",
            schema.target,
            ratio,
            limits.warn_imbalance_ratio,
            limits.max_imbalance_ratio,
            f"class imbalance ratio {ratio:.1f}",
        )
    )
    return QualityReport(
        rows=rows,
        columns=tuple(columns),
        class_counts=class_counts,
        imbalance_ratio=ratio,
        issues=tuple(issues),
    )
