"""A chunk validates as the service's row type validates each row: the fast path for a
chunk whose columns are already clean gives the same rows, and anything else goes through
the row type with its reasons."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import TypeAdapter

from domain.data.schema import FeatureKind, FeatureSchema, FeatureSpec
from domain.serving.batch import ValidatedChunk
from infrastructure.batch.chunk_validators import TabularChunkValidator
from infrastructure.batch.table_files import TableFormat, read_chunks
from infrastructure.serving.tabular_request import build_request_types

SCHEMA = FeatureSchema(
    target="y",
    features=(
        FeatureSpec(name="x", kind=FeatureKind.NUMERIC, dtype="float64"),
        FeatureSpec(name="plan", kind=FeatureKind.CATEGORICAL, dtype="object", categories=("a",)),
    ),
    classes=("no", "yes"),
)


def _validator() -> TabularChunkValidator:
    return TabularChunkValidator(SCHEMA, SimpleNamespace(scorer=None))  # type: ignore[arg-type]


def _chunk(tmp_path: Path, text: str) -> Any:
    source = tmp_path / "in.csv"
    source.write_text(text)
    (chunk,) = read_chunks(source, TableFormat.CSV, 100, numeric=["x"])
    return chunk


def _row_by_row(chunk: Any) -> list[Any]:
    """What the service's row type makes of each row, validated one at a time."""
    row = TypeAdapter(build_request_types(SCHEMA, max_rows=1).row)
    columns = [chunk.data.values(name) for name in ("x", "plan")]
    return [row.validate_python(r) for r in zip(*columns, strict=True)]


def test_a_clean_chunk_gives_the_rows_the_row_type_gives(tmp_path: Path) -> None:
    chunk = _chunk(tmp_path, "x,plan\n1.5,a\n,b\n-2e3,\n1e15,NA\n 7,a\n")
    assert chunk.data.typed["x"].dtype == "float64", "numbers converted in one cast"
    validated = _validator().validate(chunk)
    assert validated == ValidatedChunk([0, 1, 2, 3, 4], _row_by_row(chunk), [])
    assert list(validated.inputs) == [
        (1.5, "a"),
        (None, "b"),
        (-2000.0, None),
        (1e15, "NA"),
        (7.0, "a"),
    ]
    assert all(type(r[0]) in (float, type(None)) for r in validated.inputs)


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("n/a", "x: Input should be a valid number"),
        ("nan", "x: Input should be a valid number"),
        ("inf", "x: Input should be a finite number"),
        ("1e16", "x: Input should be less than or equal to 1000000000000000"),
    ],
)
def test_a_field_the_service_refuses_is_rejected_with_its_reason(
    tmp_path: Path, field: str, reason: str
) -> None:
    chunk = _chunk(tmp_path, f"x,plan\n1.5,a\n{field},b\n")
    validated = _validator().validate(chunk)
    assert validated.positions == [0] and list(validated.inputs) == [(1.5, "a")]
    assert len(validated.rejected) == 1 and validated.rejected[0].position == 1
    assert validated.rejected[0].reason.startswith(reason), validated.rejected[0].reason


def test_a_mixed_json_lines_chunk_matches_the_row_type_row_by_row(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [
        '{"x": 1.5, "plan": "a"}',
        '{"x": 2, "plan": "b"}',
        '{"x": "3", "plan": "a"}',
        '{"x": null, "plan": true}',
        '{"x": 4.5, "plan": 7}',
        '{"x": 1e300, "plan": "a"}',
        '{"x": 0.25, "plan": 1.5}',
        '{"plan": "c"}',
    ]
    source.write_text("\n".join(lines) + "\n")
    (chunk,) = read_chunks(source, TableFormat.JSONL, 100, numeric=["x"])
    validated = _validator().validate(chunk)
    row = TypeAdapter(build_request_types(SCHEMA, max_rows=1).row)
    expected: dict[int, Any] = {}
    for position, values in enumerate(
        zip(*(chunk.data.values(n) for n in ("x", "plan")), strict=True)
    ):
        try:
            expected[position] = row.validate_python(values)
        except ValueError:
            continue
    assert dict(zip(validated.positions, validated.inputs, strict=True)) == expected
    assert 0 < len(expected) < len(lines), "some rows pass, some are refused"
    assert sorted([*validated.positions, *(r.position for r in validated.rejected)]) == list(
        range(len(lines))
    )
