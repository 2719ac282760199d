"""The serving contract: what training writes is exactly what serving reads."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from domain.models.contract import TEXT_TASK, ServingContract
from tests.fakes.registry import fake_contract


def test_metadata_round_trips_through_json() -> None:
    contract = fake_contract(("no", "yes"))
    stored = json.loads(json.dumps(contract.to_metadata()))  # what a store keeps
    assert ServingContract.from_metadata(stored) == contract


def test_models_stored_before_the_contract_named_its_task_read_it_from_the_label() -> None:
    metadata = fake_contract().to_metadata()
    del metadata["task"]
    assert ServingContract.from_metadata(metadata, task="tabular-classification").task == (
        "tabular-classification"
    )


def test_each_kind_must_carry_its_own_parts() -> None:
    metadata = fake_contract().to_metadata()
    with pytest.raises(ValidationError, match="max_length"):
        ServingContract.from_metadata({**metadata, "task": TEXT_TASK})
    del metadata["feature_schema"]
    with pytest.raises(ValidationError, match="feature_schema"):
        ServingContract.from_metadata(metadata)
