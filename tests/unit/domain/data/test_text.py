from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.data.text import (
    TEXT_LENGTH_FEATURE,
    WHITESPACE_CLASS,
    clean_texts,
    label_encoding,
    normalize_text,
    text_reference_profile,
)
from domain.evaluation.behaviour import perturbations, run_behaviour_checks
from shared.errors import DataError


def test_label_names_map_raw_labels_in_natural_order() -> None:
    encoding = label_encoding([1, 0, 1], {"0": "negative", "1": "positive"})
    assert encoding.names == ("negative", "positive")
    assert encoding.ids([0, 1, 1]) == [0, 1, 1]
    with pytest.raises(DataError, match="label mapping"):
        encoding.ids([2])


def test_without_names_raw_values_are_the_classes() -> None:
    encoding = label_encoding(["sports", "world", "business", "sci"], None)
    assert encoding.names == ("business", "sci", "sports", "world")
    assert label_encoding([10, 2, 1], None).names == ("1", "2", "10")
    with pytest.raises(DataError, match="no name for labels"):
        label_encoding([0, 1, 2], {"0": "a", "1": "b"})
    with pytest.raises(DataError, match="two classes"):
        label_encoding([1, 1], None)


def test_clean_texts_drops_empty_rows_and_names_missing_columns() -> None:
    frame = pd.DataFrame({"t": [" hi ", None, "  ", "ok"], "y": [1, 0, 1, None]})
    assert clean_texts(frame, "t", "y")["t"].tolist() == ["hi"]
    with pytest.raises(DataError, match="sentence"):
        clean_texts(frame, "sentence", "y")


def test_reference_profile_holds_lengths_and_class_prior() -> None:
    profile = text_reference_profile(["ab", "abcd", "abcdef"], ["x", "y", "y"])
    assert profile.numeric[TEXT_LENGTH_FEATURE].mean == pytest.approx(4.0)
    assert profile.class_prior == pytest.approx({"x": 1 / 3, "y": 2 / 3})


def test_behaviour_checks_score_invariance_and_negation() -> None:
    assert perturbations("Good, fun!") == {"upper_case": "GOOD, FUN!", "no_punctuation": "Good fun"}

    def predict(texts: Sequence[str]) -> list[str]:  # a keyword model: "not" flips, case matters
        return ["neg" if "not" in t or t.isupper() else "pos" for t in texts]

    report = run_behaviour_checks(predict, ["nice film ."], [("it is good", "it is not good")])
    assert report.invariance_pass_rate == 0.5  # upper case flips it, punctuation does not
    assert report.negation_flip_rate == 1.0
    assert report.metrics() == {
        "behaviour.invariance_pass_rate": 0.5,
        "behaviour.negation_flip_rate": 1.0,
    }


@given(st.text(alphabet=st.sampled_from(" \t\n\xa0\u3000\u2028\x1cabe\u0301\u00e9."), max_size=12))
def test_normalize_text_skips_only_work_that_would_change_nothing(text: str) -> None:
    """The fast path (already NFC, single spaces) answers as the full normalization does."""
    full = re.sub(f"[{WHITESPACE_CLASS}]+", " ", unicodedata.normalize("NFC", text)).strip(" ")
    assert normalize_text(text) == full
