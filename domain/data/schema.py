"""Feature schema of a tabular dataset: which columns are numeric or categorical, and the target."""

from __future__ import annotations

from enum import StrEnum

import pandas as pd
from pydantic import BaseModel, ConfigDict

from shared.errors import DataError


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class FeatureSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: FeatureKind
    dtype: str
    # Categories seen in training; serving accepts others (they encode to all-zeros).
    categories: tuple[str, ...] = ()


class ExcludedColumn(BaseModel):
    """A column feature inference left out, and why (shown in the quality report)."""

    model_config = ConfigDict(frozen=True)

    name: str
    reason: str


class FeatureSchema(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: str
    features: tuple[FeatureSpec, ...]
    classes: tuple[str, ...]
    excluded: tuple[ExcludedColumn, ...] = ()

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.kind is FeatureKind.NUMERIC]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.kind is FeatureKind.CATEGORICAL]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


# An identifier needs enough rows to look unique by more than chance, and a text column with
# more distinct values than half its rows cannot be learned from by one-hot encoding: each
# category is seen about once, and at serving nearly every value is new.
IDENTIFIER_MIN_ROWS = 20
IDENTIFIER_DISTINCT_SHARE = 0.5


def identifier_reason(column: pd.Series) -> str | None:
    """Why ``column`` looks like an identifier rather than a feature, or None.

    - strings with a distinct value for most rows (names, ticket or order numbers);
    - integers, one per row, that run consecutively or rise in file order (a row index or a
      sequence number). Unique floats are measurements, not identifiers, and are kept.
    """
    present = column.dropna()
    rows = len(present)
    if rows < IDENTIFIER_MIN_ROWS or pd.api.types.is_bool_dtype(column):
        return None
    distinct = int(present.nunique())
    if pd.api.types.is_integer_dtype(column):
        if distinct != rows:
            return None
        values = present.astype("int64")
        if int(values.max()) - int(values.min()) + 1 == rows:
            return f"integers {values.min()}..{values.max()}, one per row (a row index)"
        if values.is_monotonic_increasing:
            return f"{rows} distinct integers rising with the row order (a sequence number)"
        return None
    if pd.api.types.is_numeric_dtype(column):
        return None
    if distinct >= IDENTIFIER_DISTINCT_SHARE * rows:
        return f"{distinct} distinct of {rows} rows"
    return None


def infer_feature_schema(
    frame: pd.DataFrame,
    target: str,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
) -> FeatureSchema:
    """Build the schema, inferring feature kinds from dtypes when they are not given.

    Numbers (ints, floats) are numeric; strings, booleans and categoricals are categorical.
    Inferred columns that look like identifiers (`identifier_reason`) are left out and listed
    in ``excluded``; columns named in ``numeric`` or ``categorical`` are always kept.
    """
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is not in the data (columns: {list(frame)})")
    declared = [*(numeric or []), *(categorical or [])]
    missing = [name for name in declared if name not in frame.columns]
    if missing:
        raise DataError(f"feature columns not in the data: {missing}")
    if target in declared:
        raise DataError(f"target column {target!r} is also listed as a feature")
    excluded: list[ExcludedColumn] = []

    def inferred(columns: list[str]) -> list[str]:
        kept = []
        for column in columns:
            reason = identifier_reason(frame[column])
            if reason is None:
                kept.append(column)
            else:
                excluded.append(ExcludedColumn(name=str(column), reason=reason))
        return kept

    undeclared = (
        inferred([c for c in frame.columns if c != target and c not in declared])
        if numeric is None or categorical is None
        else []
    )
    if numeric is None and categorical is None:
        numeric = [
            c
            for c in undeclared
            if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        ]
        categorical = [c for c in undeclared if c not in numeric]
    elif numeric is None:
        numeric = undeclared
    elif categorical is None:
        categorical = undeclared
    assert numeric is not None and categorical is not None
    for name in numeric:
        coerced = pd.to_numeric(frame[name], errors="coerce")
        if coerced.isna().sum() > frame[name].isna().sum():
            raise DataError(f"numeric feature {name!r} holds values that are not numbers")
    if not numeric and not categorical:
        raise DataError("the dataset has no feature columns besides the target")
    features = [
        FeatureSpec(name=str(c), kind=FeatureKind.NUMERIC, dtype=str(frame[c].dtype))
        for c in numeric
    ] + [
        FeatureSpec(
            name=str(c),
            kind=FeatureKind.CATEGORICAL,
            dtype=str(frame[c].dtype),
            categories=tuple(sorted(frame[c].dropna().astype(str).unique())),
        )
        for c in categorical
    ]
    classes = tuple(sorted(frame[target].dropna().astype(str).unique()))
    if len(classes) < 2:
        raise DataError(f"target {target!r} needs at least two classes, found {list(classes)}")
    return FeatureSchema(
        target=target, features=tuple(features), classes=classes, excluded=tuple(excluded)
    )


def prepare_features(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Feature columns in schema order: numbers as float, categories as strings (NaN kept)."""
    prepared = pd.DataFrame(index=frame.index)
    for spec in schema.features:
        column = frame[spec.name]
        if spec.kind is FeatureKind.NUMERIC:
            prepared[spec.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            prepared[spec.name] = column.map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    return prepared
