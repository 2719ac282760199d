from __future__ import annotations

import pytest

from domain.models.policy import (
    GatePolicy,
    after_rollback,
    evaluate_gate,
    with_new_champion,
)
from shared.errors import GateFailedError, ModelNotFoundError


def test_gate_passes_at_threshold_and_fails_below() -> None:
    policy = GatePolicy(metric="accuracy", threshold=0.95)
    assert evaluate_gate({"accuracy": 0.95}, policy).passed
    failed = evaluate_gate({"accuracy": 0.9499}, policy)
    assert not failed.passed
    with pytest.raises(GateFailedError, match=r"FAILED: accuracy 0\.9499"):
        failed.raise_if_failed()
    with pytest.raises(KeyError, match="macro_f1"):
        evaluate_gate({"accuracy": 1.0}, GatePolicy(metric="macro_f1", threshold=0.5))


def test_champion_history_supports_rollback() -> None:
    history = with_new_champion([], "1")
    history = with_new_champion(history, "3")
    assert with_new_champion(history, "3") == ["1", "3"]
    assert after_rollback(history) == ["1"]
    with pytest.raises(ModelNotFoundError, match="only one ever promoted"):
        after_rollback(["1"])
