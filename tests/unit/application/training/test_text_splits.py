"""Where each text split comes from: every dataset key given in a config takes effect."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from application.training.jobs import TextJobConfig
from application.training.train_text import load_text_splits


class FrameLoader:
    """The DatasetLoader port over frames held in memory, keyed by source name."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self._frames = frames

    def load(self, source: str) -> pd.DataFrame:
        return self._frames[source].copy()


def _texts(prefix: str, rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"text": [f"{prefix} text {i}" for i in range(rows)], "label": [i % 2 for i in range(rows)]}
    )


LOADER = FrameLoader(
    {"all.csv": _texts("pool", 200), "test.csv": _texts("held", 30), "dev.csv": _texts("dev", 20)}
)


def _job(**dataset: Any) -> TextJobConfig:
    return TextJobConfig.model_validate(
        {
            "kind": "text",
            "registered_model_name": "splits",
            "dataset": dataset,
            "gate": {"threshold": 0.5},
        }
    )


def _prefixes(frame: pd.DataFrame) -> set[str]:
    return {text.split()[0] for text in frame["text"]}


def test_source_with_a_test_file_evaluates_on_that_file() -> None:
    splits = load_text_splits(_job(source="all.csv", test="test.csv"), LOADER)

    assert _prefixes(splits.test) == {"held"} and len(splits.test) == 30
    assert _prefixes(splits.train) == _prefixes(splits.validation) == {"pool"}
    # The whole source feeds train and validation; validation_fraction is its share.
    assert len(splits.train) + len(splits.validation) == 200
    assert len(splits.validation) == 20


def test_source_with_a_validation_file_keeps_it_and_splits_off_test() -> None:
    splits = load_text_splits(_job(source="all.csv", validation="dev.csv"), LOADER)

    assert _prefixes(splits.validation) == {"dev"} and len(splits.validation) == 20
    assert _prefixes(splits.test) == {"pool"} and len(splits.test) == 20
    assert len(splits.train) == 180


def test_source_alone_is_split_three_ways_without_overlap() -> None:
    splits = load_text_splits(_job(source="all.csv"), LOADER)

    assert (len(splits.train), len(splits.validation), len(splits.test)) == (160, 20, 20)
    texts = [set(frame["text"]) for frame in (splits.train, splits.validation, splits.test)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


@pytest.mark.parametrize(
    ("dataset", "field"),
    [
        ({"source": "all.csv", "test": "test.csv", "test_fraction": 0.2}, "dataset.test_fraction"),
        (
            {"train": "all.csv", "validation": "dev.csv", "validation_fraction": 0.2},
            "dataset.validation_fraction",
        ),
        ({"source": "all.csv", "train": "all.csv"}, "not both"),
    ],
)
def test_a_key_that_cannot_take_effect_is_refused(dataset: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        _job(**dataset)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"method": "full", "lora": {"r": 4}}, "lora"),
        ({"training": {"epochs": 2, "max_steps": 10}}, "training.epochs"),
        ({"loss": {"kind": "ce", "gamma": 1.0}}, "loss.gamma"),
        ({"loss": {"kind": "weighted_ce", "alpha": [1.0, 2.0]}}, "loss.alpha"),
    ],
)
def test_settings_that_another_setting_disables_are_refused(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        TextJobConfig.model_validate(
            {
                "kind": "text",
                "registered_model_name": "splits",
                "dataset": {"source": "all.csv"},
                "gate": {"threshold": 0.5},
                **change,
            }
        )
