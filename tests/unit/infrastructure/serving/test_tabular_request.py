from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.data.schema import FeatureKind, FeatureSchema, FeatureSpec
from infrastructure.serving.tabular_request import build_request_types, instances_of

SCHEMA = FeatureSchema(
    target="y",
    features=(
        FeatureSpec(name="petal length (cm)", kind=FeatureKind.NUMERIC, dtype="float64"),
        FeatureSpec(
            name="plan", kind=FeatureKind.CATEGORICAL, dtype="object", categories=("a", "b")
        ),
    ),
    classes=("no", "yes"),
)
TYPES = build_request_types(SCHEMA, max_rows=3)


def test_rows_are_strict_finite_and_bounded() -> None:
    rows = TypeAdapter(TYPES.rows)
    assert rows.validate_json('[[1, "a"], [2.5, 7], [0, true]]') == [
        (1.0, "a"),
        (2.5, "7"),
        (0.0, "True"),
    ]
    for bad in (
        '[["1", "a"]]',
        '[[NaN, "a"]]',
        "[[1, 2.5]]",
        "[]",
        '[[1,"a"],[1,"a"],[1,"a"],[1,"a"]]',
    ):
        with pytest.raises(ValidationError):
            rows.validate_json(bad)


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        ({"petal length (cm)": 1.5, "plan": "zzz"}, [(1.5, "zzz")]),
        ({"instances": [{"petal length (cm)": 1, "plan": "a"}] * 2}, [(1.0, "a"), (1.0, "a")]),
    ],
)
def test_predict_body_takes_one_instance_or_many(body: Any, rows: list[tuple[Any, ...]]) -> None:
    parsed = TYPES.predict_body.model_validate(body)
    assert instances_of(parsed, TYPES.field_names) == rows


def test_predict_errors_name_the_feature() -> None:
    with pytest.raises(ValidationError) as error:
        TYPES.predict_body.model_validate({"petal length (cm)": 1.5, "plan": "a", "extra": 1})
    assert "extra" in str(error.value)
    with pytest.raises(ValidationError) as error:
        TYPES.predict_body.model_validate({"plan": "a"})
    assert "petal length (cm)" in str(error.value)


def test_null_is_a_missing_value_for_every_feature_but_omission_is_an_error() -> None:
    rows = TypeAdapter(TYPES.rows)
    assert rows.validate_json('[[null, "a"], [1, null]]') == [(None, "a"), (1.0, None)]
    parsed = TYPES.predict_body.model_validate({"petal length (cm)": None, "plan": None})
    assert instances_of(parsed, TYPES.field_names) == [(None, None)]
    with pytest.raises(ValidationError, match="plan"):
        TYPES.predict_body.model_validate({"petal length (cm)": None})
    for non_finite in ('[[NaN, "a"]]', '[[1e999, "a"]]', "[[Infinity, null]]"):
        with pytest.raises(ValidationError, match="finite"):
            rows.validate_json(non_finite)
