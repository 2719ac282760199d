from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from domain.data.fingerprint import fingerprint_frame
from domain.data.schema import FeatureKind, infer_feature_schema, prepare_features
from domain.data.split import split_indices
from shared.errors import DataError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30, 40, np.nan, 50],
            "city": ["paris", "rome", None, "paris"],
            "member": [True, False, True, False],
            "y": ["no", "yes", "no", "yes"],
        }
    )


def test_kinds_are_inferred_from_dtypes() -> None:
    schema = infer_feature_schema(_frame(), "y")
    kinds = {f.name: f.kind for f in schema.features}
    assert kinds == {
        "age": FeatureKind.NUMERIC,
        "city": FeatureKind.CATEGORICAL,
        "member": FeatureKind.CATEGORICAL,
    }
    assert schema.classes == ("no", "yes")
    assert dict((f.name, f.categories) for f in schema.features)["city"] == ("paris", "rome")


def test_declared_columns_are_checked() -> None:
    with pytest.raises(DataError, match="not in the data"):
        infer_feature_schema(_frame(), "y", numeric=["height"])
    with pytest.raises(DataError, match="target column 'label'"):
        infer_feature_schema(_frame(), "label")
    with pytest.raises(DataError, match="not numbers"):
        infer_feature_schema(_frame(), "y", numeric=["city"], categorical=[])


def test_prepare_features_types_columns() -> None:
    frame = _frame()
    prepared = prepare_features(frame, infer_feature_schema(frame, "y"))
    assert prepared["age"].dtype == "float64"
    assert prepared["member"].tolist() == ["True", "False", "True", "False"]
    assert pd.isna(prepared["city"].iloc[2])


def test_fingerprint_is_stable_and_changes_with_data() -> None:
    frame = _frame()
    first = fingerprint_frame(frame)
    assert fingerprint_frame(frame.copy()) == first
    assert (first.rows, first.columns) == (4, 4)
    changed = frame.copy()
    changed.loc[0, "age"] = 31
    assert fingerprint_frame(changed).sha256 != first.sha256
    renamed = frame.rename(columns={"age": "years"})
    assert fingerprint_frame(renamed).sha256 != first.sha256
    reindexed = frame.set_index(pd.Index([10, 11, 12, 13]))
    assert fingerprint_frame(reindexed).sha256 == first.sha256


def test_stratified_split_keeps_class_shares_and_is_seeded() -> None:
    labels = pd.Series(["a"] * 80 + ["b"] * 20)
    train, test = split_indices(labels, 0.25, seed=1, stratify=True)
    assert len(set(train) & set(test)) == 0
    assert len(train) + len(test) == 100
    assert labels.iloc[test].value_counts().to_dict() == {"a": 20, "b": 5}
    again = split_indices(labels, 0.25, seed=1, stratify=True)
    assert (again[1] == test).all()


def test_stratified_split_rejects_singleton_classes() -> None:
    with pytest.raises(DataError, match="class 'b' has 1 row"):
        split_indices(pd.Series(["a", "a", "a", "b"]), 0.5, seed=0, stratify=True)


def _passengers(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "passenger_id": np.arange(1, rows + 1),
            "order_no": np.arange(rows) * 7 + 100_003,
            "name": [f"Passenger {i}, Mr" for i in range(rows - 2)] + ["Twin, Mr", "Twin, Mr"],
            "fare": rng.uniform(5, 80, rows),
            "embarked": rng.choice(["S", "C", "Q"], rows),
            "survived": rng.choice(["no", "yes"], rows),
        }
    )


def test_identifier_like_columns_are_left_out_with_the_reason() -> None:
    schema = infer_feature_schema(_passengers(), "survived")

    assert schema.names == ["fare", "embarked"], "unique floats are measurements, kept"
    reasons = {column.name: column.reason for column in schema.excluded}
    assert reasons["name"] == "59 distinct of 60 rows"
    assert "row index" in reasons["passenger_id"]
    assert "sequence number" in reasons["order_no"]


def test_explicit_feature_lists_keep_identifier_like_columns() -> None:
    schema = infer_feature_schema(_passengers(), "survived", numeric=["passenger_id", "fare"])

    assert schema.numeric == ["passenger_id", "fare"]
    # The rest is still inferred, so the other identifiers stay out.
    assert schema.categorical == ["embarked"]
    assert {column.name for column in schema.excluded} == {"order_no", "name"}


def test_quality_report_warns_about_each_left_out_identifier() -> None:
    from domain.data.quality import Severity, assess_quality

    frame = _passengers()
    report = assess_quality(frame, infer_feature_schema(frame, "survived"))

    warnings = {i.column: i for i in report.issues if i.check == "identifier"}
    assert set(warnings) == {"passenger_id", "order_no", "name"}
    assert warnings["name"].severity is Severity.WARNING
    assert "59 distinct of 60 rows" in warnings["name"].message
    assert report.passed
