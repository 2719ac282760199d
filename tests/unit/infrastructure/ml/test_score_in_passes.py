"""Scoring a batch's passes side by side: the same rows as one at a time, errors surface;
a pass pads as the tokenizer would."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from infrastructure.ml.text.classifier import pad_pass, score_in_passes

TEXTS = [" ".join(["word"] * n) for n in (3, 17, 1, 9, 9, 25, 2, 14, 6, 30, 4, 11)]


def _words(texts: list[str], truncation: bool, max_length: int) -> dict[str, list[Any]]:
    """A whitespace tokenizer: one id per word, cut at ``max_length``."""
    ids = [list(range(len(text.split())))[:max_length] for text in texts]
    return {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}


def _by_length(features: dict[str, list[Any]]) -> np.ndarray:
    """Each text's (length, length / 100): which row went where is visible in the output."""
    lengths = np.array([len(row) for row in features["input_ids"]], dtype=np.float32)
    return np.stack([lengths, lengths / 100.0], axis=1)


def _score(pool: ThreadPoolExecutor | None, of: Any = _by_length) -> np.ndarray:
    return score_in_passes(_words, TEXTS, 20, 2, of, batch_size=3, max_tokens=24, pool=pool)


def test_side_by_side_passes_fill_the_same_rows_in_input_order() -> None:
    one_at_a_time = _score(None)
    assert one_at_a_time[:, 0].tolist() == [min(len(t.split()), 20) for t in TEXTS]
    with ThreadPoolExecutor(3) as pool:
        threads: set[int] = set()

        def recording(features: dict[str, list[Any]]) -> np.ndarray:
            threads.add(threading.get_ident())
            return _by_length(features)

        assert np.array_equal(_score(pool, recording), one_at_a_time)
    assert threading.get_ident() not in threads, "the passes ran in the pool's threads"


def test_a_failing_pass_fails_the_batch_side_by_side_too() -> None:
    def broken(features: dict[str, list[Any]]) -> np.ndarray:
        if max(len(row) for row in features["input_ids"]) > 20 - 1:
            raise RuntimeError("this pass broke")
        return _by_length(features)

    with ThreadPoolExecutor(2) as pool, pytest.raises(RuntimeError, match="this pass broke"):
        _score(pool, broken)


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_pass_pads_as_the_tokenizer_does(side: str) -> None:
    from transformers import AutoTokenizer

    from application.training.jobs import DEFAULT_TEXT_BASE_MODEL
    from infrastructure.ml.text.base_model import resolve_base_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(DEFAULT_TEXT_BASE_MODEL))
    tokenizer.padding_side = side
    features = dict(tokenizer(["a short one", "a rather longer sentence than that", "x"]))
    expected = tokenizer.pad(features, return_tensors="np")
    padded = pad_pass(features, tokenizer.pad_token_id, side)
    assert padded.keys() == expected.keys()
    for name, values in padded.items():
        assert values.dtype == np.int64
        assert np.array_equal(values, expected[name]), name
