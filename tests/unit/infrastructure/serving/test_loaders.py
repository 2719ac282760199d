"""Tabular rows kept as columns behave as the tuples a request's rows validate to."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from domain.data.schema import FeatureKind, FeatureSchema, FeatureSpec
from infrastructure.serving.loaders import FrameRows, TabularScorer, model_frame

SCHEMA = FeatureSchema(
    target="y",
    features=(
        FeatureSpec(name="x", kind=FeatureKind.NUMERIC, dtype="float64"),
        FeatureSpec(
            name="plan", kind=FeatureKind.CATEGORICAL, dtype="object", categories=("a", "b")
        ),
    ),
    classes=("no", "yes"),
)
ROWS: list[tuple[Any, ...]] = [(1.5, "a"), (None, "zz"), (-2.0, None), (3.0, "b")]


def _scorer() -> TabularScorer:
    model = SimpleNamespace(classes_=np.array(["no", "yes"]))
    return TabularScorer(model, SCHEMA, SimpleNamespace())  # type: ignore[arg-type]


def _frame_rows() -> FrameRows:
    columns = {"x": [1.5, np.nan, -2.0, 3.0], "plan": pd.array(["a", "zz", None, "b"], "str")}
    return FrameRows(model_frame(columns, SCHEMA.names, frozenset({"x"})))


def test_frame_rows_read_as_the_tuples_of_a_request() -> None:
    rows = _frame_rows()
    assert len(rows) == 4 and rows == ROWS and list(rows) == ROWS
    assert rows[1] == (None, "zz") and rows[1:3] == ROWS[1:3]
    assert all(type(value) in (float, str, type(None)) for row in rows for value in row)


def test_the_scorer_sees_the_same_frame_from_tuples_or_columns() -> None:
    scorer = _scorer()
    from_tuples, from_columns = scorer.frame(ROWS), scorer.frame(_frame_rows())
    pd.testing.assert_frame_equal(from_tuples, from_columns)
    assert from_columns["plan"].dtype == object and from_columns["plan"].isna().tolist() == [
        False,
        False,
        True,
        False,
    ]


def test_unknown_categories_of_a_chunk_are_those_of_each_row() -> None:
    scorer = _scorer()
    expected = [scorer.unknown_categories(row) for row in ROWS]
    assert (
        scorer.unknown_categories_per_row(_frame_rows()) == expected == [{}, {"plan": "zz"}, {}, {}]
    )
