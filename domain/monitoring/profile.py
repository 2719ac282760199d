"""Reference profile of the training data, the baseline that serving drift is measured against."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from domain.data.schema import FeatureKind, FeatureSchema

DEFAULT_BINS = 10
# Kept so that small serving windows can be compared with a two-sample KS test.
DEFAULT_SAMPLE_SIZE = 500


class NumericProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    bin_edges: tuple[float, ...]
    bin_frequencies: tuple[float, ...]
    mean: float
    std: float
    sample: tuple[float, ...]


class CategoricalProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    frequencies: dict[str, float]


class ReferenceProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    class_prior: dict[str, float]
    # Share of training rows without a value, per feature: serving compares its live missing
    # rate with it. Profiles stored before it existed read as "no missing values".
    missing_rate: dict[str, float] = Field(default_factory=dict)


def quantile_bin_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Unique quantile edges, so each bin holds about the same share of the reference."""
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def bin_frequencies(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> np.ndarray:
    """Share of ``values`` per bin; the outer bins are open-ended so nothing is dropped."""
    inner = np.asarray(edges, dtype=float)[1:-1]
    counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(edges) - 1)
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def profile_numeric(
    values: np.ndarray,
    bins: int = DEFAULT_BINS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> NumericProfile:
    present = values[np.isfinite(values)]
    if present.size == 0:
        present = np.array([0.0])
    edges = quantile_bin_edges(present, bins)
    rng = np.random.default_rng(seed)
    sample = (
        present if present.size <= sample_size else rng.choice(present, sample_size, replace=False)
    )
    return NumericProfile(
        bin_edges=tuple(float(e) for e in edges),
        bin_frequencies=tuple(float(f) for f in bin_frequencies(present, edges)),
        mean=float(present.mean()),
        std=float(present.std()),
        sample=tuple(float(v) for v in np.sort(sample)),
    )


def category_frequencies(values: pd.Series) -> dict[str, float]:
    counts = values.dropna().astype(str).value_counts(normalize=True).sort_index()
    return {str(k): float(v) for k, v in counts.items()}


def build_reference_profile(
    features: pd.DataFrame, labels: pd.Series, schema: FeatureSchema, bins: int = DEFAULT_BINS
) -> ReferenceProfile:
    numeric = {}
    categorical = {}
    for spec in schema.features:
        column = features[spec.name]
        if spec.kind is FeatureKind.NUMERIC:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            numeric[spec.name] = profile_numeric(values, bins)
        else:
            categorical[spec.name] = CategoricalProfile(frequencies=category_frequencies(column))
    return ReferenceProfile(
        rows=len(features),
        numeric=numeric,
        categorical=categorical,
        class_prior=category_frequencies(labels),
        missing_rate={
            spec.name: float(features[spec.name].isna().mean()) if len(features) else 0.0
            for spec in schema.features
        },
    )
