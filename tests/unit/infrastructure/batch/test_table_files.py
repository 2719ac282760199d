"""Reading chunks of each format and writing scored chunks that join into one table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from domain.serving.batch import Chunk, Rejected, ValidatedChunk
from domain.serving.prediction import Prediction, ScoredBatch
from infrastructure.batch.table_files import (
    ChunkFileSink,
    RunIdentity,
    TableFormat,
    TableRows,
    answer_column_names,
    column_values,
    count_rows,
    read_chunks,
    table_columns,
)
from shared.errors import ConfigError


def _rows(columns: dict[str, list[str]]) -> TableRows:
    frame = pd.DataFrame(columns)
    return TableRows(frame, frame)


def _scored(labels: list[str]) -> ScoredBatch:
    probabilities = np.array([[0.9, 0.1] if label == "a" else [0.1, 0.9] for label in labels])
    return ScoredBatch(
        variant="champion",
        model_version="3",
        classes=("a", "b"),
        request_ids=["0" * 32] * len(labels),
        labels=labels,
        label_ids=probabilities.argmax(axis=1),
        probabilities=probabilities,
    )


def test_csv_fields_are_text_numbers_are_converted_and_only_empty_is_missing(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("x,kind\n1.5,NA\n,null\nabc,\n2,b\n")
    assert table_columns(source, TableFormat.CSV) == ["x", "kind"]
    assert count_rows(source, TableFormat.CSV) == 4
    chunks = list(read_chunks(source, TableFormat.CSV, 3, numeric=["x"]))
    assert [(c.index, c.first_row, c.size) for c in chunks] == [(0, 0, 3), (1, 3, 1)]
    assert chunks[0].data.values("x") == [1.5, None, "abc"]
    assert chunks[0].data.values("kind") == ["NA", "null", None]
    assert chunks[1].data.values("x") == [2.0]
    assert column_values(chunks[0].data.original, "x") == ["1.5", None, "abc"]  # as written


def test_jsonl_and_parquet_keep_their_types(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"x": 1, "t": "a"}\n{"x": "2", "t": null}\n{"t": "c"}\n')
    (chunk,) = read_chunks(source, TableFormat.JSONL, 10, numeric=["x"])
    assert chunk.data.values("x") == [1, "2", None]
    assert count_rows(source, TableFormat.JSONL) == 3
    parquet = tmp_path / "in.parquet"
    pd.DataFrame({"x": [1.0, None], "t": ["a", None]}).to_parquet(parquet)
    (chunk,) = read_chunks(parquet, TableFormat.PARQUET, 10, numeric=["x"])
    assert chunk.data.values("x") == [1.0, None]
    assert count_rows(parquet, TableFormat.PARQUET) == 2


def _sink(tmp_path: Path, fmt: TableFormat, chunk_rows: int = 2, **kwargs: bool) -> ChunkFileSink:
    source = tmp_path / "in.csv"
    if not source.exists():
        source.write_text("id,x\n1,a\n2,b\n3,c\n")
    output = tmp_path / f"out.{fmt}"
    identity = RunIdentity.of(source, "m:1", chunk_rows, fmt)
    columns = answer_column_names(["a", "b"], ["unknown_categories"])
    return ChunkFileSink(
        output, tmp_path / f"out.rejects.{fmt}", fmt, identity, ["id", "x"], columns, **kwargs
    )


@pytest.mark.parametrize("fmt", list(TableFormat))
def test_parts_join_into_one_table_even_when_a_chunk_is_all_rejects(
    tmp_path: Path, fmt: TableFormat
) -> None:
    sink = _sink(tmp_path, fmt)
    first = Chunk(0, 0, 2, _rows({"id": ["1", "2"], "x": ["a", "b"]}))
    second = Chunk(1, 2, 1, _rows({"id": ["3"], "x": ["c"]}))
    sink.write(second, ValidatedChunk([], [], [Rejected(0, "x: bad")]), None, {})
    extras = {"unknown_categories": [{}, {"x": "b"}]}
    sink.write(first, ValidatedChunk([0, 1], ["a", "b"], []), _scored(["a", "b"]), extras)
    assert sink.written() == {0, 1}
    assert sink.finish() == (2, 1)
    read: Any = {
        TableFormat.CSV: lambda p: pd.read_csv(p, dtype=str),
        TableFormat.TSV: lambda p: pd.read_csv(p, sep="\t", dtype=str),
        TableFormat.JSONL: lambda p: pd.read_json(p, lines=True, dtype=False),
        TableFormat.PARQUET: pd.read_parquet,
    }[fmt]
    scored = read(tmp_path / f"out.{fmt}")
    assert list(scored.columns[:3]) == ["id", "x", "row"]
    assert [str(v) for v in scored["predicted_label"]] == ["a", "b"]
    assert [float(v) for v in scored["probability_b"]] == [0.1, 0.9]
    assert [float(v) for v in scored["probability"]] == [0.9, 0.9]
    assert [json.loads(str(v)) for v in scored["unknown_categories"]] == [{}, {"x": "b"}]
    rejects = read(tmp_path / f"out.rejects.{fmt}")
    assert [str(v) for v in rejects["error"]] == ["x: bad"] and [
        int(v) for v in rejects["row"]
    ] == [2]
    assert not (tmp_path / f"out.{fmt}.parts").exists()


def test_rows_are_counted_as_written_even_with_line_breaks_in_fields(tmp_path: Path) -> None:
    sink = _sink(tmp_path, TableFormat.CSV)
    chunk = Chunk(0, 0, 3, _rows({"id": ["1", "2", "3"], "x": ["a\nb", "c", "d\r\ne"]}))
    validated = ValidatedChunk([0, 1], ["a", "b"], [Rejected(2, "x: bad")])
    sink.write(chunk, validated, _scored(["a", "b"]), {"unknown_categories": [{}, {}]})
    assert sink.finish() == (2, 1)
    scored = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert scored["x"].tolist() == ["a\nb", "c"]


def test_a_part_written_before_counts_were_kept_is_counted_by_its_lines(
    tmp_path: Path,
) -> None:
    sink = _sink(tmp_path, TableFormat.CSV)
    chunk = Chunk(0, 0, 2, _rows({"id": ["1", "2"], "x": ["a", "b"]}))
    sink.write(chunk, ValidatedChunk([0, 1], ["a", "b"], []), _scored(["a", "b"]), {})
    (tmp_path / "out.csv.parts" / "chunk-000000" / "rows.json").unlink()
    assert sink.finish() == (2, 0)


def test_parts_of_another_run_are_refused_unless_restarted(tmp_path: Path) -> None:
    sink = _sink(tmp_path, TableFormat.CSV)
    chunk = Chunk(0, 0, 1, _rows({"id": ["1"], "x": ["a"]}))
    sink.write(chunk, ValidatedChunk([0], ["a"], []), _scored(["a"]), {})
    assert _sink(tmp_path, TableFormat.CSV).written() == {0}  # the same run resumes
    with pytest.raises(ConfigError, match=r"chunk_rows.*--restart"):
        _sink(tmp_path, TableFormat.CSV, chunk_rows=5)
    assert _sink(tmp_path, TableFormat.CSV, chunk_rows=5, restart=True).written() == set()
    manifest = json.loads((tmp_path / "out.csv.parts" / "manifest.json").read_text())
    assert manifest["chunk_rows"] == 5


def test_input_columns_that_the_output_adds_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("predicted_label,x\n")
    identity = RunIdentity.of(source, "m:1", 2, TableFormat.CSV)
    columns = answer_column_names(["a"], [])
    with pytest.raises(ConfigError, match="predicted_label"):
        ChunkFileSink(
            tmp_path / "o.csv",
            tmp_path / "r.csv",
            TableFormat.CSV,
            identity,
            ["predicted_label"],
            columns,
        )


def test_the_output_columns_are_the_services_answer_fields() -> None:
    """One contract: a field added to the service's answer must reach the output too."""
    renamed = {"label": "predicted_label", "label_id": "predicted_label_id"}
    columns = answer_column_names(["a", "b"], [])
    expected = [renamed.get(f, f) for f in Prediction.model_fields if f != "probabilities"]
    assert [c for c in columns if not c.startswith("probability_")] == expected


def test_numbers_parse_as_the_service_parses_json_and_odd_fields_as_before(
    tmp_path: Path,
) -> None:
    fields = [
        "0.1",
        "-2.5e-3",
        "+7",
        ".5",
        "3.",
        "1.7976931348623157e308",
        "2.2250738585072014e-308",
    ]
    fields += ["0.30000000000000004441", "123456789012345678901234567890"]
    odd = {" 7": 7.0, "inf": float("inf"), "n/a": "n/a", "nan": "nan", "1;5": "1;5"}
    source = tmp_path / "in.csv"
    source.write_text("x,k\n" + "".join(f"{field},k\n" for field in [*fields, *odd, ""]))
    (chunk,) = read_chunks(source, TableFormat.CSV, 100, numeric=["x"])
    values = chunk.data.values("x")
    assert values[: len(fields)] == [float(f) for f in fields]  # Python's correctly rounded parse
    assert values[len(fields) : -1] == list(odd.values())
    assert values[-1] is None


@pytest.mark.parametrize("odd", ["nan", "NaN", "inf", "-Infinity", "1e400"])
def test_a_column_of_numbers_but_one_odd_field_reads_as_a_column_with_text_does(
    tmp_path: Path, odd: str
) -> None:
    """The one-cast path (every field parses) gives what the field-by-field path gives:
    a field reading as NaN stays text, so the row is refused rather than taken as missing."""
    alone, mixed = tmp_path / "alone.csv", tmp_path / "mixed.csv"
    alone.write_text(f"x,k\n1.5,a\n{odd},b\n,c\n")
    mixed.write_text(f"x,k\n1.5,a\n{odd},b\n,c\nabc,d\n")
    (one,) = read_chunks(alone, TableFormat.CSV, 100, numeric=["x"])
    (other,) = read_chunks(mixed, TableFormat.CSV, 100, numeric=["x"])
    assert one.data.values("x") == other.data.values("x")[:3]


def test_a_malformed_line_stops_the_file_with_a_message_naming_it(tmp_path: Path) -> None:
    ragged, not_utf8 = tmp_path / "ragged.csv", tmp_path / "latin1.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    not_utf8.write_bytes(b"a,b\n1,\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"ragged\.csv: not a well-formed file: .*3,4,5"):
        list(read_chunks(ragged, TableFormat.CSV, 1, numeric=["a"]))
    with pytest.raises(ConfigError, match=r"latin1\.csv: not a well-formed file: .*UTF8"):
        list(read_chunks(not_utf8, TableFormat.CSV, 1, numeric=["a"]))


def test_chunks_have_exactly_the_rows_asked_for_across_the_readers_blocks(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.csv"
    # Long enough that Arrow reads it in several blocks, with a quoted line break.
    lines = [f'{i},"t{i}\nx"' if i == 70_001 else f"{i},t{i}" for i in range(150_001)]
    source.write_text("n,t\n" + "\n".join(lines) + "\n")
    chunks = list(read_chunks(source, TableFormat.CSV, 40_000, numeric=["n"]))
    assert [c.size for c in chunks] == [40_000, 40_000, 40_000, 30_001]
    assert [c.first_row for c in chunks] == [0, 40_000, 80_000, 120_000]
    assert chunks[1].data.values("n")[:1] == [40_000.0]
    assert column_values(chunks[1].data.original, "t")[30_001] == "t70001\nx"
