from __future__ import annotations

import numpy as np
import pytest

from domain.monitoring.drift import (
    DriftConfig,
    DriftMethod,
    categorical_drift,
    chi_square_survival,
    drifted_share,
    kolmogorov_survival,
    ks_two_sample,
    numeric_drift,
    population_stability_index,
    wasserstein_distance,
)
from domain.monitoring.profile import CategoricalProfile, profile_numeric

RNG = np.random.default_rng(7)
REFERENCE = RNG.normal(0.0, 1.0, 5000)
PROFILE = profile_numeric(REFERENCE)


def test_survival_functions_match_known_values() -> None:
    # Reference values: scipy.stats.kstwobign.sf(1.36) ~ 0.0494, chi2.sf(3.84, 1) ~ 0.0500,
    # chi2.sf(11.07, 5) ~ 0.0500, chi2.sf(2.0, 4) = 0.7358.
    assert kolmogorov_survival(1.36) == pytest.approx(0.0494, abs=5e-4)
    assert chi_square_survival(3.841, 1) == pytest.approx(0.05, abs=5e-4)
    assert chi_square_survival(11.07, 5) == pytest.approx(0.05, abs=5e-4)
    assert chi_square_survival(2.0, 4) == pytest.approx(0.7358, abs=5e-4)


def test_ks_same_distribution_no_drift_shifted_drift() -> None:
    same = RNG.normal(0.0, 1.0, 200)
    shifted = RNG.normal(1.0, 1.0, 200)
    assert ks_two_sample(REFERENCE, same)[1] > 0.05
    assert ks_two_sample(REFERENCE, shifted)[1] < 1e-6

    config = DriftConfig()
    calm = numeric_drift("x", PROFILE, same, config)
    moved = numeric_drift("x", PROFILE, shifted, config)
    assert (calm.method, calm.drifted) == (DriftMethod.KS, False)
    assert (moved.method, moved.drifted) == (DriftMethod.KS, True)


def test_large_windows_use_normalised_wasserstein() -> None:
    config = DriftConfig(large_window=1000)
    calm = numeric_drift("x", PROFILE, RNG.normal(0.0, 1.0, 3000), config)
    moved = numeric_drift("x", PROFILE, RNG.normal(0.5, 1.0, 3000), config)
    assert calm.method is DriftMethod.WASSERSTEIN and not calm.drifted
    assert moved.drifted and moved.score == pytest.approx(0.5, abs=0.1)
    assert wasserstein_distance(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == pytest.approx(2.0)


def test_categorical_tests_and_psi() -> None:
    profile = CategoricalProfile(frequencies={"a": 0.5, "b": 0.3, "c": 0.2})
    config = DriftConfig()
    same = list(RNG.choice(["a", "b", "c"], 300, p=[0.5, 0.3, 0.2]))
    flipped = list(RNG.choice(["a", "b", "c"], 300, p=[0.1, 0.2, 0.7]))
    novel = ["z"] * 100
    assert not categorical_drift("k", profile, same, config).drifted
    assert categorical_drift("k", profile, flipped, config).drifted
    assert categorical_drift("k", profile, novel, config).drifted
    big = DriftConfig(large_window=100)
    assert categorical_drift("k", profile, same, big).method is DriftMethod.PSI
    assert not categorical_drift("k", profile, same, big).drifted
    assert categorical_drift("k", profile, flipped, big).drifted
    assert population_stability_index([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_drifted_share() -> None:
    config = DriftConfig()
    results = [
        numeric_drift("x", PROFILE, RNG.normal(0.0, 1.0, 100), config),
        numeric_drift("y", PROFILE, RNG.normal(3.0, 1.0, 100), config),
    ]
    assert drifted_share(results) == 0.5
    assert drifted_share([]) == 0.0
