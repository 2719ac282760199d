"""Drift statistics between a reference profile and a window of serving inputs.

Defaults follow Evidently's choices: for small windows a statistical test (two-sample
Kolmogorov-Smirnov for numbers, chi-square goodness of fit for categories; drift when the
p-value is below 0.05); for large windows a distance (Wasserstein distance normalised by the
reference standard deviation, drift above 0.1; population stability index for categories,
drift above 0.2). The window size that switches between them is configurable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import binomtest

from domain.monitoring.profile import CategoricalProfile, NumericProfile

# Stands in for empty bins so that PSI's logarithm stays finite.
PSI_EPSILON = 1e-4


class DriftMethod(StrEnum):
    KS = "ks"
    CHI_SQUARE = "chi_square"
    WASSERSTEIN = "wasserstein"
    PSI = "psi"


class DriftConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    large_window: int = Field(
        default=1000, ge=2, description="windows at least this big use distances"
    )
    min_window: int = Field(
        default=30, ge=2, description="smaller windows are not scored (too noisy to tell)"
    )
    p_value_threshold: float = Field(default=0.05, gt=0.0, lt=1.0)
    wasserstein_threshold: float = Field(default=0.1, gt=0.0)
    psi_threshold: float = Field(default=0.2, gt=0.0)


class FeatureDrift(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature: str
    method: DriftMethod
    # p-value for tests (lower = more drift), distance for distances (higher = more drift).
    statistic: float
    score: float
    drifted: bool
    window: int


def kolmogorov_survival(statistic: float) -> float:
    """P(K > statistic) for the Kolmogorov distribution (asymptotic series)."""
    if statistic <= 0:
        return 1.0
    total = 0.0
    for j in range(1, 101):
        term = 2.0 * (-1) ** (j - 1) * math.exp(-2.0 * j * j * statistic * statistic)
        total += term
        if abs(term) < 1e-12:
            break
    return float(min(max(total, 0.0), 1.0))


def ks_two_sample(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and its asymptotic p-value."""
    a = np.sort(reference.astype(float))
    b = np.sort(current.astype(float))
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    statistic = float(np.max(np.abs(cdf_a - cdf_b)))
    effective = math.sqrt(a.size * b.size / (a.size + b.size))
    p_value = kolmogorov_survival((effective + 0.12 + 0.11 / effective) * statistic)
    return statistic, p_value


def _lower_gamma_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    denominator = a
    for _ in range(1000):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_gamma_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_square_survival(statistic: float, degrees_of_freedom: int) -> float:
    """P(X > statistic) for a chi-square variable (regularised upper incomplete gamma)."""
    if statistic <= 0:
        return 1.0
    a, x = degrees_of_freedom / 2.0, statistic / 2.0
    if x < a + 1.0:
        return float(min(max(1.0 - _lower_gamma_series(a, x), 0.0), 1.0))
    return float(min(max(_upper_gamma_fraction(a, x), 0.0), 1.0))


def chi_square_goodness_of_fit(
    expected_shares: Mapping[str, float], observed: Sequence[str]
) -> tuple[float, float]:
    """Chi-square statistic and p-value of observed categories against reference shares.

    Categories never seen in training are pooled into one extra cell with a tiny expected
    share, so a flood of new values registers as drift.
    """
    counts: dict[str, int] = {}
    for value in observed:
        counts[value] = counts.get(value, 0) + 1
    n = len(observed)
    cells = list(expected_shares)
    unseen = sum(count for value, count in counts.items() if value not in expected_shares)
    expected = np.array([max(expected_shares[c], PSI_EPSILON) for c in cells] + [PSI_EPSILON])
    expected = expected / expected.sum() * n
    actual = np.array([counts.get(c, 0) for c in cells] + [unseen], dtype=float)
    statistic = float(np.sum((actual - expected) ** 2 / expected))
    return statistic, chi_square_survival(statistic, max(len(cells), 1))


def population_stability_index(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
) -> float:
    ref = np.clip(np.asarray(reference, dtype=float), PSI_EPSILON, None)
    cur = np.clip(np.asarray(current, dtype=float), PSI_EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def wasserstein_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """First Wasserstein distance between two empirical distributions."""
    a = np.sort(reference.astype(float))
    b = np.sort(current.astype(float))
    grid = np.sort(np.concatenate([a, b]))
    widths = np.diff(grid)
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * widths))


def numeric_drift(
    name: str, profile: NumericProfile, window: np.ndarray, config: DriftConfig
) -> FeatureDrift:
    values = window[np.isfinite(window)]
    reference = np.asarray(profile.sample, dtype=float)
    if values.size < config.large_window:
        _, p_value = ks_two_sample(reference, values)
        return FeatureDrift(
            feature=name,
            method=DriftMethod.KS,
            statistic=p_value,
            score=1.0 - p_value,
            drifted=p_value < config.p_value_threshold,
            window=int(values.size),
        )
    scale = profile.std if profile.std > 0 else 1.0
    distance = wasserstein_distance(reference, values) / scale
    return FeatureDrift(
        feature=name,
        method=DriftMethod.WASSERSTEIN,
        statistic=distance,
        score=distance,
        drifted=distance > config.wasserstein_threshold,
        window=int(values.size),
    )


def categorical_drift(
    name: str, profile: CategoricalProfile, window: Sequence[str], config: DriftConfig
) -> FeatureDrift:
    if len(window) < config.large_window:
        _, p_value = chi_square_goodness_of_fit(profile.frequencies, window)
        return FeatureDrift(
            feature=name,
            method=DriftMethod.CHI_SQUARE,
            statistic=p_value,
            score=1.0 - p_value,
            drifted=p_value < config.p_value_threshold,
            window=len(window),
        )
    cells = list(profile.frequencies)
    counts = {c: 0 for c in cells}
    other = 0
    for value in window:
        if value in counts:
            counts[value] += 1
        else:
            other += 1
    current = [counts[c] / len(window) for c in cells] + [other / len(window)]
    psi = population_stability_index([profile.frequencies[c] for c in cells] + [0.0], current)
    return FeatureDrift(
        feature=name,
        method=DriftMethod.PSI,
        statistic=psi,
        score=psi,
        drifted=psi > config.psi_threshold,
        window=len(window),
    )


class MissingDrift(BaseModel):
    """How often a feature arrives without a value, live against training."""

    model_config = ConfigDict(frozen=True)

    feature: str
    window: int
    missing: int
    rate: float
    reference_rate: float
    p_value: float
    drifted: bool


def missing_drift(
    name: str, reference_rate: float, missing: int, window: int, config: DriftConfig
) -> MissingDrift:
    """Exact two-sided binomial test of the window's missing count against the training rate.

    A model trained without gaps (rate 0) that starts receiving them has drifted at the
    first one: its imputer fills them with values it never had to stand in for.
    """
    if reference_rate <= 0.0 or reference_rate >= 1.0:
        expected_all = reference_rate >= 1.0
        p_value = 1.0 if missing == (window if expected_all else 0) else 0.0
    else:
        p_value = float(binomtest(missing, window, reference_rate).pvalue)
    return MissingDrift(
        feature=name,
        window=window,
        missing=missing,
        rate=missing / window if window else 0.0,
        reference_rate=reference_rate,
        p_value=p_value,
        drifted=window >= config.min_window and p_value < config.p_value_threshold,
    )


def drifted_share(results: Sequence[FeatureDrift]) -> float:
    return sum(r.drifted for r in results) / len(results) if results else 0.0
