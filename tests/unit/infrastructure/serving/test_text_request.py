"""The text service's request types: limits, normalization and the predict body shapes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.data.text import normalize_text
from infrastructure.serving.text_request import build_text_request_types

TYPES = build_text_request_types(max_chars=20, max_texts=3)
TEXTS: TypeAdapter[list[str]] = TypeAdapter(TYPES.texts)


def test_texts_are_normalized_for_the_model() -> None:
    assert TEXTS.validate_python(["  a\u00a0 good\tfilm  ", "cafe\u0301"]) == [
        "a good film",
        "caf\u00e9",
    ]


@pytest.mark.parametrize(
    ("texts", "problem"),
    [
        ([], "too_short"),
        (["ok"] * 4, "too_long"),
        ([""], "string_too_short"),
        (["   \n\t"], "blank"),
        (["x" * 21], "string_too_long"),
        ([3], "string_type"),
        ([None], "string_type"),
        ("not a list", "list_type"),
    ],
)
def test_bad_texts_name_the_position_and_problem(texts: Any, problem: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TEXTS.validate_python(texts)
    text = str(raised.value.errors()) + str(raised.value)
    assert problem in text


def test_predict_body_takes_one_text_or_several() -> None:
    body = TYPES.predict_body
    assert body.model_validate({"text": " great "}).all_texts() == ["great"]
    assert body.model_validate({"texts": ["a", "b"]}).all_texts() == ["a", "b"]


@pytest.mark.parametrize(
    "payload",
    [{}, {"text": "a", "texts": ["b"]}, {"txt": "a"}, {"text": ""}, {"texts": []}, {"text": 1}],
)
def test_predict_body_rejects_other_shapes(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TYPES.predict_body.model_validate(payload)


def test_normalize_text_collapses_whitespace_and_composes_unicode() -> None:
    assert normalize_text("  two\n\nlines  ") == "two lines"
    assert normalize_text("e\u0301") == "\u00e9"
    assert normalize_text(" \t ") == ""
