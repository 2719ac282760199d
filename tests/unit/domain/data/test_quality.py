from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from domain.data.quality import QualityThresholds, Severity, assess_quality, iqr_outlier_rate
from domain.data.schema import infer_feature_schema
from shared.errors import DataError


def _frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, rows),
            "colour": rng.choice(["red", "blue"], rows),
            "label": np.tile(["a", "b"], rows // 2),
        }
    )


def test_clean_data_passes_without_issues() -> None:
    frame = _frame()
    report = assess_quality(frame, infer_feature_schema(frame, "label"))
    assert report.passed
    assert report.class_counts == {"a": 100, "b": 100}
    assert report.imbalance_ratio == 1.0
    assert [issue.check for issue in report.issues] == []


def test_injected_missing_values_are_caught() -> None:
    frame = _frame()
    frame.loc[:9, "x"] = np.nan  # 5% -> warning level exceeded only above 5%
    frame.loc[:29, "colour"] = None  # 15%
    report = assess_quality(frame, infer_feature_schema(frame, "label"))
    flagged = {issue.column: issue.severity for issue in report.issues if issue.check == "missing"}
    assert flagged == {"colour": Severity.WARNING}
    columns = {c.name: c for c in report.columns}
    assert columns["x"].missing_rate == pytest.approx(0.05)
    assert columns["colour"].missing_rate == pytest.approx(0.15)


def test_mostly_missing_feature_blocks_training() -> None:
    frame = _frame()
    frame.loc[:159, "x"] = np.nan
    report = assess_quality(frame, infer_feature_schema(frame, "label"))
    assert not report.passed
    with pytest.raises(DataError, match=r"x: 80\.0% missing"):
        report.raise_if_blocking()


def test_injected_outliers_are_caught() -> None:
    frame = _frame()
    frame.loc[:19, "x"] = 1000.0
    report = assess_quality(frame, infer_feature_schema(frame, "label"))
    outliers = [issue for issue in report.issues if issue.check == "outliers"]
    assert [(i.column, i.severity) for i in outliers] == [("x", Severity.WARNING)]
    assert iqr_outlier_rate(frame["x"], 1.5) >= 0.1


def test_class_imbalance_warns_then_blocks() -> None:
    frame = _frame(rows=200)
    frame["label"] = ["a"] * 180 + ["b"] * 20
    schema = infer_feature_schema(frame, "label")
    warned = assess_quality(frame, schema)
    assert warned.imbalance_ratio == pytest.approx(9.0)
    assert [i.severity for i in warned.issues if i.check == "class_imbalance"] == [Severity.WARNING]
    blocked = assess_quality(frame, schema, QualityThresholds(max_imbalance_ratio=5.0))
    assert not blocked.passed


def test_missing_labels_and_too_few_rows_block() -> None:
    frame = _frame(rows=10)
    frame.loc[0, "label"] = None
    report = assess_quality(frame, infer_feature_schema(frame, "label"))
    checks = {issue.check for issue in report.blocking}
    assert checks == {"min_rows", "missing_target"}
