"""The service's request validation applied to a chunk of a file, row by row.

The types are the very ones the services build for a request (a tabular ``row``, one
``text``); a chunk is validated as one list, so the common case costs one call, and the
errors pydantic reports per list position become that row's reject reason (field and
problem). Rows are never dropped silently: each is either an input or a reject.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from domain.data.schema import FeatureKind, FeatureSchema
from domain.serving.batch import Chunk, Rejected, ValidatedChunk
from domain.serving.model import LoadedModel
from infrastructure.batch.table_files import TableRows, column_values
from infrastructure.serving.loaders import FrameRows, TabularScorer, model_frame
from infrastructure.serving.tabular_request import NUMBER_LIMIT, build_request_types
from infrastructure.serving.text_request import build_text_request_types


class TabularChunkValidator:
    extras = ("unknown_categories",)

    def __init__(self, schema: FeatureSchema, model: LoadedModel) -> None:
        self._names = schema.names
        # Columns a text file (CSV) must turn into numbers before validation.
        self.numeric = [s.name for s in schema.features if s.kind is FeatureKind.NUMERIC]
        self._numeric_set = frozenset(self.numeric)
        row: Any = build_request_types(schema, max_rows=1).row
        self._rows: TypeAdapter[list[Any]] = TypeAdapter(list[row])
        scorer = model.scorer
        self._scorer = scorer if isinstance(scorer, TabularScorer) else None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._names)

    def validate(self, chunk: Chunk) -> ValidatedChunk:
        """The chunk's rows as :class:`FrameRows`: the clean ones (see :meth:`_clean`)
        stay the chunk's own columns, no tuple per row built."""
        rows: TableRows = chunk.data
        frame = rows.typed
        clean = self._clean(rows)
        if clean.all():
            return ValidatedChunk(list(range(len(frame))), self._frame_rows(frame), [])
        # Only the rows that may be refused go through the row type: validating every row
        # was a third of a tabular file's time (profiled), and a file with a few bad rows
        # per chunk would otherwise pay it in every chunk.
        suspects = np.flatnonzero(~clean)
        columns = [rows.values(name, suspects) for name in self._names]
        checked = _validate(
            self._rows,
            list(zip(*columns, strict=True)),
            lambda loc: self._names[loc[1]] if len(loc) > 1 else "row",
        )
        kept = np.flatnonzero(clean)
        passed = suspects[checked.positions]
        parts = [self._frame_rows(frame.iloc[kept]).frame]
        if checked.inputs:
            records = pd.DataFrame.from_records(checked.inputs, columns=self._names)
            parts.append(model_frame(dict(records.items()), self._names, self._numeric_set))
        positions = np.concatenate([kept, passed])
        order = np.argsort(positions, kind="stable")
        inputs = pd.concat(parts, ignore_index=True).iloc[order].reset_index(drop=True)
        return ValidatedChunk(
            positions[order].tolist(),
            FrameRows(inputs),
            [Rejected(int(suspects[r.position]), r.reason) for r in checked.rejected],
        )

    def _frame_rows(self, frame: pd.DataFrame) -> FrameRows:
        columns = {name: frame[name].to_numpy() for name in self._names}
        return FrameRows(model_frame(columns, self._names, self._numeric_set))

    def _clean(self, rows: TableRows) -> np.ndarray:
        """Rows the row type returns unchanged, decided per column: numbers are Python
        floats (or missing) within the limits, categories str (or missing). The others
        (a field kept as text, integers, infinities, a JSON line's booleans) are left to
        the row type, so refusals and their reasons stay exactly the service's."""
        frame = rows.typed
        clean = np.ones(len(frame), dtype=bool)
        for name in self._names:
            column = frame[name]
            if name in self._numeric_set:
                if column.dtype == np.float64:
                    numbers = column.to_numpy()
                    clean &= np.isnan(numbers) | (np.abs(numbers) <= NUMBER_LIMIT)
                    if name in rows.texts:
                        clean[rows.texts[name].index.to_numpy()] = False
                else:
                    values = column_values(frame, name)
                    clean &= np.fromiter(
                        (
                            v is None or (type(v) is float and abs(v) <= NUMBER_LIMIT)
                            for v in values
                        ),
                        dtype=bool,
                        count=len(values),
                    )
            elif not isinstance(column.dtype, pd.StringDtype):
                values = column_values(frame, name)
                clean &= np.fromiter(
                    (v is None or type(v) is str for v in values), dtype=bool, count=len(values)
                )
        return clean

    def answer_extras(self, inputs: Sequence[Any]) -> dict[str, list[Any]]:
        """As the service answers: each answer names the categories its version never saw."""
        scorer = self._scorer
        if scorer is None or not scorer.has_categories:
            return {"unknown_categories": [{}] * len(inputs)}
        return {"unknown_categories": scorer.unknown_categories_per_row(inputs)}


class TextChunkValidator:
    extras: tuple[str, ...] = ()

    def __init__(self, column: str, max_chars: int) -> None:
        self._column = column
        text: Any = build_text_request_types(max_chars, max_texts=1).text
        self._texts: TypeAdapter[list[Any]] = TypeAdapter(list[text])

    @property
    def columns(self) -> tuple[str, ...]:
        return (self._column,)

    def validate(self, chunk: Chunk) -> ValidatedChunk:
        raw = column_values(chunk.data.typed, self._column)
        return _validate(self._texts, raw, lambda loc: self._column)

    def answer_extras(self, inputs: Sequence[Any]) -> dict[str, list[Any]]:
        return {}


def _validate(adapter: TypeAdapter[list[Any]], raw: Sequence[Any], field_of: Any) -> ValidatedChunk:
    try:
        return ValidatedChunk(list(range(len(raw))), adapter.validate_python(raw), [])
    except ValidationError as error:
        problems: defaultdict[int, list[str]] = defaultdict(list)
        for detail in error.errors(include_url=False):
            loc = detail["loc"]
            problems[int(loc[0])].append(f"{field_of(loc)}: {_message(detail)}")
    positions = [i for i in range(len(raw)) if i not in problems]
    # The good rows again on their own: the values validation makes of them (converted,
    # normalized) are what the model sees.
    inputs = adapter.validate_python([raw[i] for i in positions]) if positions else []
    rejected = [Rejected(i, "; ".join(reasons)) for i, reasons in sorted(problems.items())]
    return ValidatedChunk(positions, inputs, rejected)


def _message(detail: Any) -> str:
    if detail.get("input", ...) is None and detail["type"] in ("string_type", "float_type"):
        return "missing (empty); this field needs a value"
    return str(detail["msg"])
