"""Tables on disk for offline scoring: CSV, TSV, JSON lines and Parquet, read in chunks and
written chunk by chunk so that an interrupted run resumes.

CSV and TSV carry no types: every field is read as text, an empty field is a missing value
(only the empty field: "NA" or "null" may be a real category or text), and the columns the
model takes as numbers are converted; a field that is not a number stays text so the
service's validation rejects the row naming it. JSON lines and Parquet keep their own types
(a number sent as a string is refused, as by the service); a key missing from a JSON line
is a missing value.

Each scored chunk is written into ``OUTPUT.parts/`` as a folder renamed into place once its
files are complete, next to a manifest naming the input file (size and modification time),
the model and the chunk size: the same command finds the chunks already done and skips
them; a different input, model or chunk size is refused rather than mixed in. When every
chunk is written the parts are joined into the output and the rejects file, and removed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domain.serving.batch import Chunk, ValidatedChunk
from domain.serving.prediction import HexIds, ScoredBatch
from shared.errors import ConfigError

MANIFEST = "manifest.json"
PART_ROWS = "rows.json"
ROW_COLUMN = "row"
ERROR_COLUMN = "error"
# Answer fields renamed in the output so that a dataset's own "label" column stays as it is.
RENAMED = {"label": "predicted_label", "label_id": "predicted_label_id"}
PROBABILITY_PREFIX = "probability_"


class TableFormat(StrEnum):
    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"
    PARQUET = "parquet"

    @classmethod
    def of(cls, path: Path, option: str) -> TableFormat:
        suffix = path.suffix.lower().lstrip(".")
        suffix = {"ndjson": "jsonl", "pq": "parquet"}.get(suffix, suffix)
        try:
            return cls(suffix)
        except ValueError:
            raise ConfigError(
                f"{option}: {path.name}: use a .csv, .tsv, .jsonl or .parquet file"
            ) from None


def table_columns(path: Path, fmt: TableFormat) -> list[str]:
    """The input's columns (for JSON lines, the keys of the first line)."""
    if fmt is TableFormat.PARQUET:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    if fmt is TableFormat.JSONL:
        with path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    first = json.loads(line)
                    if not isinstance(first, dict):
                        raise ConfigError(f"INPUT: {path.name}: each line must be a JSON object")
                    return list(first)
        return []
    return list(pd.read_csv(path, sep=_separator(fmt), nrows=0).columns)


def count_rows(path: Path, fmt: TableFormat) -> int:
    """Data rows, for the progress bar (a CSV field with a line break counts twice)."""
    if fmt is TableFormat.PARQUET:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return max(0, lines - (fmt in (TableFormat.CSV, TableFormat.TSV)))


def read_chunks(
    path: Path, fmt: TableFormat, chunk_rows: int, numeric: Sequence[str]
) -> Iterator[Chunk]:
    """The input in chunks of ``chunk_rows`` rows, each's data :class:`TableRows`."""
    frames: Iterator[pd.DataFrame]
    if fmt is TableFormat.PARQUET:
        import pyarrow.parquet as pq

        frames = (
            batch.to_pandas() for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
        )
    elif fmt is TableFormat.JSONL:
        frames = iter(pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False))
    else:
        frames = (table.to_pandas() for table in _text_tables(path, fmt, chunk_rows))
    first_row = 0
    text = fmt in (TableFormat.CSV, TableFormat.TSV)
    for index, frame in enumerate(frames):
        yield Chunk(index, first_row, len(frame), _rows(frame, numeric, text))
        first_row += len(frame)


def _text_tables(path: Path, fmt: TableFormat, chunk_rows: int) -> Iterator[Any]:
    """CSV or TSV as Arrow tables of ``chunk_rows`` rows, every column text, an empty field
    (quoted or not) missing.

    Arrow's reader, not pandas': pandas' chunked reader was most of a tabular file's
    reading time (0.40 s for 500,000 rows against Arrow's 0.08 s, measured), and its
    strings are then copied into Arrow-backed columns anyway.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = table_columns(path, fmt)
    reader = _well_formed(
        path,
        pacsv.open_csv,
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 22),
        parse_options=pacsv.ParseOptions(delimiter=_separator(fmt), newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    # Arrow's batches follow its block size; chunks must be exactly ``chunk_rows`` rows,
    # so that a resumed run cuts the file where the interrupted one did.
    held: list[Any] = []
    count = 0
    while (batch := _well_formed(path, _next_or_none, reader)) is not None:
        held.append(batch)
        count += batch.num_rows
        while count >= chunk_rows:
            table = pa.Table.from_batches(held, reader.schema)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held, reader.schema)


def _well_formed(path: Path, call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call``'s result; a malformed line (a field too many, text that is not UTF-8)
    stops the file with Arrow's message, which quotes the line, instead of a trace."""
    import pyarrow as pa

    try:
        return call(*args, **kwargs)
    except pa.ArrowInvalid as error:
        raise ConfigError(f"{path.name}: not a well-formed file: {error}") from None


def _next_or_none(reader: Any) -> Any:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


@dataclass(frozen=True)
class TableRows:
    """A chunk's rows as the file has them (written back to the output and the rejects)
    and as validation reads them: in a CSV or TSV the model's numeric columns are float64,
    and ``texts`` holds, per such column, the fields that are not numbers (by row), which
    validation refuses naming the field."""

    original: pd.DataFrame
    typed: pd.DataFrame
    texts: Mapping[str, pd.Series] = field(default_factory=dict)

    def values(self, name: str, rows: np.ndarray | None = None) -> list[Any]:
        """Column ``name`` (of ``rows`` only, when given) as Python values: None where a
        value is missing, a field that is not a number as its text."""
        frame = self.typed if rows is None else self.typed.iloc[rows]
        values = column_values(frame, name)
        texts = self.texts.get(name)
        if texts is None:
            return values
        if rows is None:
            for row, text in texts.items():
                values[int(row)] = text  # type: ignore[call-overload]
            return values
        where = {int(row): i for i, row in enumerate(rows.tolist())}
        for row, text in texts.items():
            at = where.get(int(row))  # type: ignore[call-overload]
            if at is not None:
                values[at] = text
        return values


def _rows(frame: pd.DataFrame, numeric: Sequence[str], text: bool) -> TableRows:
    frame = frame.reset_index(drop=True)
    if not text:
        return TableRows(frame, frame)
    # A shallow copy: copy-on-write keeps the original's columns as they are when the
    # numeric ones are replaced (a deep copy was a tenth of reading a chunk).
    typed, texts = _numbers_from_text(frame.copy(deep=False), numeric)
    return TableRows(frame, typed, texts)


def _separator(fmt: TableFormat) -> str:
    return "\t" if fmt is TableFormat.TSV else ","


def _numbers_from_text(
    frame: pd.DataFrame, numeric: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """The numeric columns as float64, and each one's fields that are not numbers.

    Those fields are kept aside rather than in the column: a column of floats and strings
    (object) was checked value by value in Python, and building it took as long as the
    cast; with them aside, a column stays float64 and checks in one vectorized pass.
    """
    texts: dict[str, pd.Series] = {}
    for name in numeric:
        if name not in frame:
            continue
        text = frame[name]
        numbers = _numbers(text)
        not_numbers = (numbers.isna() & text.notna()).to_numpy()
        if not_numbers.any():
            texts[name] = text[not_numbers]
        frame[name] = numbers
    return frame, texts


# A plain decimal number, the form nearly every field of a numeric column has.
PLAIN_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def _numbers(text: pd.Series) -> pd.Series:
    """The column as float64, NaN where a field is missing or not a number.

    Plain decimal fields are cast by Arrow on the (Arrow-backed) strings, correctly
    rounded as the service's JSON parser rounds; only the other fields (text, "inf",
    " 7") go through pandas' ``to_numeric``, which took 5 ms per 10,000 fields, a fifth
    of a tabular file's scoring time (the cast: 0.3 ms).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def field_by_field() -> pd.Series:
        return pd.to_numeric(text, errors="coerce").astype("float64")

    array = getattr(text.array, "_pa_array", None)
    if array is None:  # not Arrow-backed strings (pandas without pyarrow storage)
        return field_by_field()
    try:
        # The usual column, every field a number or empty: one cast, no pattern. Arrow
        # parses "inf" as pandas does; "nan" it parses too, but a field that reads as NaN
        # must stay text (it is not a missing value), so such a column takes the path below.
        whole = pc.cast(array, pa.float64())
        if not pc.any(pc.is_nan(whole)).as_py():
            values = np.array(whole.to_numpy(zero_copy_only=False), dtype="float64")
            return pd.Series(values, index=text.index, name=text.name, dtype="float64")
    except pa.ArrowInvalid:
        pass
    plain = pc.fill_null(pc.match_substring_regex(array, PLAIN_NUMBER), False)
    try:
        cast = pc.cast(pc.if_else(plain, array, pa.scalar(None, pa.string())), pa.float64())
    except pa.ArrowInvalid:  # a field the pattern let through but Arrow does not parse
        return field_by_field()
    values = np.array(cast.to_numpy(zero_copy_only=False), dtype="float64")  # nulls: NaN
    others = np.flatnonzero(~plain.to_numpy(zero_copy_only=False) & text.notna().to_numpy())
    if others.size:
        parsed = pd.to_numeric(text.iloc[others], errors="coerce")
        values[others] = parsed.astype("float64").to_numpy()
    return pd.Series(values, index=text.index, name=text.name, dtype="float64")


def column_values(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as Python values, a missing value as None (what JSON's null validates to)."""
    column = frame[name]
    if column.dtype == object:
        values: list[Any] = column.tolist()
        return [None if _missing(v) else v for v in values]
    mask = column.isna().to_numpy()
    values = column.astype(object).tolist()
    if mask.any():
        return [None if m else v for v, m in zip(values, mask, strict=True)]
    return values


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


@dataclass(frozen=True)
class RunIdentity:
    """What an interrupted run must share with this one for its parts to be reused."""

    input: str
    input_size: int
    input_mtime_ns: int
    model_tag: str
    chunk_rows: int
    output_format: str

    @classmethod
    def of(cls, source: Path, model_tag: str, chunk_rows: int, fmt: TableFormat) -> RunIdentity:
        stat = source.stat()
        return cls(
            str(source.resolve()), stat.st_size, stat.st_mtime_ns, model_tag, chunk_rows, fmt
        )


class ChunkFileSink:
    """Scored chunks as parts under ``OUTPUT.parts/``, joined into ``output`` and
    ``rejects`` by :meth:`finish`."""

    def __init__(
        self,
        output: Path,
        rejects: Path,
        fmt: TableFormat,
        identity: RunIdentity,
        input_columns: Sequence[str],
        answer_columns: Sequence[str],
        restart: bool = False,
    ) -> None:
        clashing = sorted(set(input_columns) & {ROW_COLUMN, ERROR_COLUMN, *answer_columns})
        if clashing:
            raise ConfigError(
                f"INPUT has columns the output adds ({', '.join(clashing)}): rename them"
            )
        # Every part gets the same columns in the same order, so the parts join into one
        # table whatever a chunk held (a chunk of rejects only still has the answer columns).
        self._scored_columns = [*input_columns, ROW_COLUMN, *answer_columns]
        self._rejected_columns = [ROW_COLUMN, ERROR_COLUMN, *input_columns]
        self.output = output
        self.rejects = rejects
        self._fmt = fmt
        self._parts = output.with_name(output.name + ".parts")
        if restart and self._parts.exists():
            shutil.rmtree(self._parts)
        manifest = self._parts / MANIFEST
        wanted = vars(identity)
        if manifest.exists():
            found = json.loads(manifest.read_text())
            if found != wanted:
                different = sorted(k for k in wanted if found.get(k) != wanted[k])
                raise ConfigError(
                    f"{self._parts} holds the parts of another run (different "
                    f"{', '.join(different)}): pass --restart to discard them"
                )
        else:
            self._parts.mkdir(parents=True, exist_ok=True)
            _write_atomically(manifest, json.dumps(wanted, indent=2).encode())

    def written(self) -> frozenset[int]:
        return frozenset(
            int(p.name.removeprefix("chunk-"))
            for p in self._parts.glob("chunk-*")
            if p.is_dir() and p.name.removeprefix("chunk-").isdigit()
        )

    def write(
        self,
        chunk: Chunk,
        validated: ValidatedChunk,
        scored: ScoredBatch | None,
        extras: Mapping[str, Sequence[Any]],
    ) -> None:
        frame: pd.DataFrame = chunk.data.original
        table = frame.iloc[validated.positions].reset_index(drop=True)
        table[ROW_COLUMN] = np.asarray(validated.positions, dtype=np.int64) + chunk.first_row
        scored_part: pd.DataFrame | Any
        if self._fmt is TableFormat.JSONL:
            # The inputs stay a pandas frame: a JSON line's column may mix types, which an
            # Arrow column cannot hold.
            if scored is not None:
                import pyarrow as pa

                answers = pa.table(_answer_arrays(scored, extras, len(table))).to_pandas()
                table = pd.concat([table, answers], axis=1)
            scored_part = table.reindex(columns=self._scored_columns)
        else:
            scored_part = _with_answers(table, scored, extras, self._scored_columns)
        positions = [r.position for r in validated.rejected]
        rejected = frame.iloc[positions].reset_index(drop=True)
        rejected[ROW_COLUMN] = [chunk.first_row + p for p in positions]
        rejected[ERROR_COLUMN] = [r.reason for r in validated.rejected]
        rejected = rejected.reindex(columns=self._rejected_columns)

        staging = self._parts / f"tmp-{chunk.index:06d}"
        if staging.exists():
            shutil.rmtree(staging)  # left by a run killed while writing this chunk
        staging.mkdir()
        self._write_frame(scored_part, staging / f"scored.{self._fmt}")
        self._write_frame(rejected, staging / f"rejects.{self._fmt}")
        counts = {"scored": len(scored_part), "rejects": len(rejected)}
        (staging / PART_ROWS).write_text(json.dumps(counts))
        staging.replace(self._parts / f"chunk-{chunk.index:06d}")

    def finish(self) -> tuple[int, int]:
        """Joins the parts into the output and the rejects file; returns their row counts."""
        chunks = sorted(self._parts.glob("chunk-*"))
        counts = (
            self._join([c / f"scored.{self._fmt}" for c in chunks], self.output),
            self._join([c / f"rejects.{self._fmt}" for c in chunks], self.rejects),
        )
        shutil.rmtree(self._parts)
        return counts

    def _write_frame(self, frame: pd.DataFrame | Any, path: Path) -> None:
        """Writes a pandas frame or (CSV, TSV, Parquet) an Arrow table."""
        import pyarrow as pa

        if self._fmt is TableFormat.JSONL:
            path.write_text(frame.to_json(orient="records", lines=True) if len(frame) else "")
            return
        table = (
            frame
            if isinstance(frame, pa.Table)
            else pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
        )
        if self._fmt is TableFormat.PARQUET:
            import pyarrow.parquet as pq

            pq.write_table(table, path, use_dictionary=_dictionary_columns(table.schema))
        else:
            import pyarrow.csv as pacsv

            # Arrow's writer: pandas' to_csv formatted the probability columns in Python
            # and was half the time of a tabular chunk (profiled).
            pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter=_separator(self._fmt)))

    def _join(self, parts: list[Path], target: Path) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        rows = 0
        if self._fmt is TableFormat.PARQUET:
            import pyarrow as pa
            import pyarrow.parquet as pq

            # A chunk with no rows of a kind still has every column, typed by pandas'
            # default: only parts with rows say what a column holds. A column empty in
            # one chunk has the null type there; permissive promotion gives one schema.
            metadata = [pq.ParquetFile(p).metadata for p in parts]
            schemas = [
                pq.read_schema(p) for p, m in zip(parts, metadata, strict=True) if m.num_rows
            ]
            if not schemas:
                schemas = [pq.read_schema(p) for p in parts[:1]] or [pa.schema([])]
            schema = pa.unify_schemas(schemas, promote_options="permissive")
            with pq.ParquetWriter(
                partial, schema, use_dictionary=_dictionary_columns(schema)
            ) as writer:
                for part in parts:
                    table = pq.read_table(part)
                    rows += table.num_rows
                    if table.num_rows:
                        writer.write_table(table.cast(schema))
        else:
            # Copied in blocks, rows counted when each part was written: a loop over the
            # lines was a quarter of writing a tabular file, and miscounted a text field
            # with a line break in it.
            with partial.open("wb") as out:
                for number, part in enumerate(parts):
                    with part.open("rb") as handle:
                        if self._fmt is not TableFormat.JSONL:
                            header = handle.readline()
                            if number == 0:
                                out.write(header)
                        shutil.copyfileobj(handle, out, 1 << 22)
                    rows += _part_rows(part)
        partial.replace(target)
        return rows


def _with_answers(
    inputs: pd.DataFrame,
    scored: ScoredBatch | None,
    extras: Mapping[str, Sequence[Any]],
    columns: Sequence[str],
) -> Any:
    """The input rows and their answers as one Arrow table, columns in ``columns`` order.

    Built as Arrow arrays from the answer's own arrays, not through a pandas frame: the
    frame (a Python string per row for labels, versions and variants) and its conversion
    were most of writing a tabular chunk (profiled). ``nthreads=1``: pyarrow otherwise
    starts a thread pool per call, which cost more than it saved on a chunk.
    """
    import pyarrow as pa

    table = pa.Table.from_pandas(inputs, preserve_index=False, nthreads=1)
    rows = table.num_rows
    answers = _answer_arrays(scored, extras, rows) if scored is not None else {}
    arrays = [
        table.column(name) if name in table.column_names else answers.get(name, pa.nulls(rows))
        for name in columns
    ]
    return pa.Table.from_arrays(arrays, names=list(columns))


def _answer_arrays(
    scored: ScoredBatch, extras: Mapping[str, Sequence[Any]], rows: int
) -> dict[str, Any]:
    """The answers as Arrow arrays named as in :func:`answer_column_names`; mappings
    (unknown categories) as JSON text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    label_ids = np.asarray(scored.label_ids, dtype=np.int64)
    probabilities = scored.probabilities
    answers: dict[str, Any] = {
        "request_id": _id_array(scored.request_ids),
        RENAMED["label"]: pc.take(pa.array(scored.classes, pa.string()), label_ids),
        RENAMED["label_id"]: pa.array(label_ids),
        "probability": pa.array(probabilities[np.arange(rows), label_ids]),
        **{
            PROBABILITY_PREFIX + name: pa.array(np.ascontiguousarray(probabilities[:, i]))
            for i, name in enumerate(scored.classes)
        },
        "model_version": pa.repeat(pa.scalar(scored.model_version, pa.string()), rows),
        "variant": pa.repeat(pa.scalar(scored.variant, pa.string()), rows),
    }
    for name, values in extras.items():
        if _all_alike(values):
            answers[name] = pa.repeat(pa.scalar(_json_if_mapping(values[0])), rows)
        else:
            answers[name] = pa.array([_json_if_mapping(v) for v in values])
    return answers


def _part_rows(part: Path) -> int:
    """Rows of a scored or rejects part: as written down with it, or (a part of a run
    before the count was kept) its lines."""
    kind = part.name.split(".")[0]
    counts = part.parent / PART_ROWS
    if counts.exists():
        return int(json.loads(counts.read_text())[kind])
    with part.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 22), b""))
    return lines - (part.suffix.lstrip(".") != TableFormat.JSONL)


def _dictionary_columns(schema: Any) -> list[str]:
    """Parquet columns worth a dictionary: not the answers that differ on every row (ids,
    row numbers, probabilities), where trying one cost a third of writing a part (measured:
    0.64 s against 0.44 s per 500,000 rows)."""
    unique = {ROW_COLUMN, "request_id", "probability"}
    return [
        name
        for name in schema.names
        if name not in unique and not name.startswith(PROBABILITY_PREFIX)
    ]


def _all_alike(values: Sequence[Any]) -> bool:
    """One value for every row (a model without categories answers {} to each): encoded
    once, not once per row. ``list.count`` compares in C; a set of ids per row was a
    seventh of writing a chunk (profiled)."""
    if not values:
        return False
    if isinstance(values, list):
        return values.count(values[0]) == len(values)
    return all(v == values[0] for v in values)


def _id_array(ids: Sequence[str]) -> Any:
    import pyarrow as pa

    if isinstance(ids, HexIds):
        return pa.array(ids.digits).cast(pa.string())
    return pa.array(list(ids), pa.string())


def _json_if_mapping(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    # Most rows have no unknown category: json.dumps per row was a third of a chunk.
    return json.dumps(value, sort_keys=True) if value else "{}"


def answer_column_names(classes: Sequence[str], extras: Sequence[str]) -> list[str]:
    """The service's answer fields as output columns (``label`` renamed, one probability
    column per class), then the model kind's extra fields."""
    return [
        "request_id",
        RENAMED["label"],
        RENAMED["label_id"],
        "probability",
        *(PROBABILITY_PREFIX + c for c in classes),
        "model_version",
        "variant",
        *extras,
    ]


def _write_atomically(path: Path, payload: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(payload)
    partial.replace(path)
