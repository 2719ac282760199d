from __future__ import annotations

import pytest

from application.registry.lifecycle import promote, rollback
from application.validation.validate_model import validate_model
from shared.errors import GateFailedError, ModelNotFoundError
from tests.fakes.registry import FakeClassifier, FakeModelRegistry, FakeModelStore, fake_contract

LABELS = ["a"] * 19 + ["b"]  # predicting "a" everywhere scores 0.95


@pytest.fixture
def registry() -> FakeModelRegistry:
    return FakeModelRegistry()


@pytest.fixture
def store() -> FakeModelStore:
    return FakeModelStore()


def _register(
    registry: FakeModelRegistry, store: FakeModelStore, answer: str, threshold: float = 0.9
) -> str:
    version = registry.add("m", FakeClassifier(answer), LABELS, threshold)
    store.save_classifier(
        "m", FakeClassifier(answer), {"registered_version": version}, fake_contract()
    )
    return version


def test_validate_uses_the_trained_threshold_unless_overridden(
    registry: FakeModelRegistry, store: FakeModelStore
) -> None:
    _register(registry, store, "a", threshold=0.9)
    assert validate_model(registry, "m").gate.passed
    assert validate_model(registry, "m").report.accuracy == pytest.approx(0.95)
    assert not validate_model(registry, "m", threshold=0.99).gate.passed


def test_promote_moves_champion_in_registry_and_store(
    registry: FakeModelRegistry, store: FakeModelStore
) -> None:
    v1 = _register(registry, store, "a")
    result = promote(registry, store, "m")
    assert (result.version, result.previous) == (v1, None)
    assert registry.aliases["m"]["champion"] == v1
    assert store.labels[v1]["alias"] == "champion"
    assert registry.histories["m"] == [v1]


def test_failing_gate_never_moves_champion(
    registry: FakeModelRegistry, store: FakeModelStore
) -> None:
    v1 = _register(registry, store, "a")
    promote(registry, store, "m")
    weak = _register(registry, store, "b")  # 5% accuracy
    with pytest.raises(GateFailedError, match=f"m v{weak} not promoted"):
        promote(registry, store, "m")
    assert registry.aliases["m"]["champion"] == v1
    assert store.labels[v1]["alias"] == "champion"
    assert registry.histories["m"] == [v1]


def test_store_failure_leaves_registry_champion_alone(
    registry: FakeModelRegistry, store: FakeModelStore
) -> None:
    v1 = _register(registry, store, "a")
    promote(registry, store, "m")
    _register(registry, store, "a")
    store.fail_marking = True
    with pytest.raises(OSError):
        promote(registry, store, "m")
    assert registry.aliases["m"]["champion"] == v1


def test_rollback_returns_to_previous_champion(
    registry: FakeModelRegistry, store: FakeModelStore
) -> None:
    v1 = _register(registry, store, "a")
    promote(registry, store, "m")
    v2 = _register(registry, store, "a")
    promote(registry, store, "m", version=v2)
    assert rollback(registry, store, "m") == (v2, v1)
    assert registry.aliases["m"]["champion"] == v1
    assert store.labels[v1]["alias"] == "champion"
    assert "alias" not in store.labels[v2]
    with pytest.raises(ModelNotFoundError, match="no previous champion"):
        rollback(registry, store, "m")


def test_missing_alias_is_reported(registry: FakeModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError, match="no version with alias 'challenger'"):
        validate_model(registry, "absent")
