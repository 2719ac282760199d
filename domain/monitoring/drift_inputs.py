"""What drift compares of a model's inputs, from its serving contract alone.

The service (its scorers) and the offline report both turn inputs into these values, so a
report over the prediction log measures exactly what the live drift gauges measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from domain.data.schema import FeatureKind, FeatureSchema
from domain.data.text import TEXT_LENGTH_FEATURE
from domain.models.contract import ServingContract
from domain.serving.model import DriftValues


def tabular_drift_values(schema: FeatureSchema, rows: Sequence[Sequence[Any]]) -> DriftValues:
    """Rows in schema order: numbers as floats (None -> NaN), categories as strings."""
    numeric = {
        spec.name: np.asarray(
            [np.nan if row[i] is None else float(row[i]) for row in rows], dtype=float
        )
        for i, spec in enumerate(schema.features)
        if spec.kind is FeatureKind.NUMERIC
    }
    categorical = {
        spec.name: [None if row[i] is None else str(row[i]) for row in rows]
        for i, spec in enumerate(schema.features)
        if spec.kind is FeatureKind.CATEGORICAL
    }
    return numeric, categorical


def text_drift_values(texts: Sequence[str]) -> DriftValues:
    lengths = np.fromiter((len(text) for text in texts), dtype=float, count=len(texts))
    return {TEXT_LENGTH_FEATURE: lengths}, {}


def drift_values(contract: ServingContract, inputs: Sequence[Any]) -> DriftValues:
    if contract.feature_schema is not None:
        return tabular_drift_values(contract.feature_schema, inputs)
    return text_drift_values(inputs)
