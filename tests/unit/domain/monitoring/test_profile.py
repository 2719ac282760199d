from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from domain.data.schema import infer_feature_schema
from domain.monitoring.profile import ReferenceProfile, bin_frequencies, build_reference_profile


def test_profile_summarises_numeric_categorical_and_classes() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(5.0, 2.0, 1000),
            "colour": rng.choice(["red", "blue", "green"], 1000, p=[0.5, 0.3, 0.2]),
            "y": rng.choice(["a", "b"], 1000, p=[0.7, 0.3]),
        }
    )
    schema = infer_feature_schema(frame, "y")
    profile = build_reference_profile(frame[["x", "colour"]], frame["y"], schema)

    x = profile.numeric["x"]
    assert x.mean == pytest.approx(5.0, abs=0.2)
    assert x.std == pytest.approx(2.0, abs=0.2)
    assert len(x.bin_frequencies) == len(x.bin_edges) - 1 == 10
    # Quantile edges put about a tenth of the reference in each bin.
    assert np.allclose(x.bin_frequencies, 0.1, atol=0.01)
    assert sum(profile.categorical["colour"].frequencies.values()) == pytest.approx(1.0)
    assert profile.class_prior["a"] == pytest.approx(0.7, abs=0.05)
    assert len(x.sample) == 500

    restored = ReferenceProfile.model_validate(json.loads(profile.model_dump_json()))
    assert restored == profile


def test_bin_frequencies_keep_values_outside_the_reference_range() -> None:
    shares = bin_frequencies(np.array([-100.0, 0.5, 100.0, 100.0]), [0.0, 1.0, 2.0])
    assert shares.tolist() == [0.5, 0.5]
