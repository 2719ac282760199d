"""Feedback through the shared log: the variant and version that answered get the label,
so does a shadow that scored the same request; bad labels and unknown ids are refused."""

from __future__ import annotations

import numpy as np
import pytest

from application.monitoring.variant_monitors import VariantMonitors
from shared.errors import InvalidInputError, UnknownPredictionError
from tests.fakes.serving import loaded, variant_monitors


def _answer(
    monitors: VariantMonitors, variant: str, version: str, ids: list[str] | None = None
) -> list[str]:
    model = loaded(version)
    monitor = monitors.monitor_for(variant, model)
    rows = [{"a": 0.9, "b": 0.1}, {"a": 0.3, "b": 0.7}]
    labels = ["a", "b"]
    inputs = [1.0, 2.0]
    return monitor.observe(
        "classify", inputs, labels, rows, [5.0, 6.0], model.scorer.drift_values(inputs), ids=ids
    )


def test_feedback_labels_the_answer_and_the_shadow_once() -> None:
    monitors, metrics = variant_monitors()
    ids = _answer(monitors, "champion", "1")
    _answer(monitors, "shadow", "9", ids=ids)

    attributed = monitors.feedback(ids[1], "a")
    assert (attributed.variant, attributed.model_version) == ("champion", "1")
    outcome = attributed.outcome
    assert (outcome.predicted, outcome.correct, outcome.labelled) == ("b", False, 1)
    assert outcome.rolling_accuracy == 0.0
    assert metrics["champion:1"].accuracy == 0.0
    assert metrics["shadow:9"].accuracy == 0.0, "the shadow's accuracy on the same traffic"
    with pytest.raises(UnknownPredictionError, match="request_id"):
        monitors.feedback(ids[1], "a")
    assert monitors.feedback(ids[0], "a").outcome.rolling_accuracy == pytest.approx(0.5)


def test_bad_labels_and_unknown_ids_are_refused_by_name() -> None:
    monitors, _ = variant_monitors()
    ids = _answer(monitors, "champion", "1")
    with pytest.raises(InvalidInputError, match="label: unknown class 'zebra'") as error:
        monitors.feedback(ids[0], "zebra")
    assert error.value.field == "label"
    with pytest.raises(UnknownPredictionError, match="request_id"):
        monitors.feedback("0" * 32, "a")
    assert np.isclose(monitors.stats()[0].stats.mean_confidence or 0, 0.8)
