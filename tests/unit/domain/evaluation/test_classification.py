from __future__ import annotations

import pytest

from domain.evaluation.classification import classification_report


def test_report_matches_hand_computed_values() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "c", "c"]
    report = classification_report(truth, predicted, ["a", "b", "c"])
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.confusion_matrix == ((2, 1, 0), (0, 1, 1), (0, 0, 1))
    assert report.per_class["a"].precision == 1.0
    assert report.per_class["a"].recall == pytest.approx(2 / 3)
    assert report.per_class["b"].precision == pytest.approx(0.5)
    assert report.per_class["c"].f1 == pytest.approx(2 / 3)
    assert report.macro_recall == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert report.weighted_recall == pytest.approx(report.accuracy)
    assert set(report.metrics()) >= {"accuracy", "macro_f1", "weighted_f1"}


def test_absent_class_scores_zero_not_nan() -> None:
    report = classification_report(["a", "a"], ["a", "a"], ["a", "b"])
    assert report.per_class["b"].precision == 0.0
    assert report.macro_f1 == pytest.approx(0.5)


def test_length_mismatch_and_empty_input_are_rejected() -> None:
    with pytest.raises(ValueError, match="2 true labels but 1"):
        classification_report(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="zero samples"):
        classification_report([], [])
