"""Use cases that move the ``champion`` alias: promote (gated) and rollback."""

from __future__ import annotations

from dataclasses import dataclass

from application.validation.validate_model import ValidationResult, validate_model
from domain.models.policy import after_rollback, with_new_champion
from domain.ports import ModelRegistry, ModelStore
from shared.errors import GateFailedError
from shared.types import CHALLENGER, CHAMPION


@dataclass(frozen=True)
class PromotionResult:
    name: str
    version: str
    previous: str | None
    validation: ValidationResult


def promote(
    registry: ModelRegistry,
    store: ModelStore,
    name: str,
    version: str | None = None,
    threshold: float | None = None,
) -> PromotionResult:
    """Make ``version`` (default: the challenger) champion, only if it passes the gate."""
    validation = validate_model(
        registry, name, alias=CHALLENGER, version=version, threshold=threshold
    )
    if not validation.gate.passed:
        raise GateFailedError(
            f"{name} v{validation.version.version} not promoted: {validation.gate.describe()}"
        )
    target = validation.version.version
    current = registry.get_by_alias(name, CHAMPION)
    history = registry.champion_history(name)
    if current is not None and (not history or history[-1] != current.version):
        # The alias was set outside this tool; keep it so rollback can return to it.
        history = with_new_champion(history, current.version)
    # Move the store label first: if it fails, the registry still names the old champion.
    store.mark_alias(name, CHAMPION, target)
    registry.set_alias(name, CHAMPION, target)
    registry.set_champion_history(name, with_new_champion(history, target))
    return PromotionResult(
        name=name,
        version=target,
        previous=current.version if current else None,
        validation=validation,
    )


def rollback(registry: ModelRegistry, store: ModelStore, name: str) -> tuple[str, str]:
    """Return ``champion`` to the previous champion; returns (from_version, to_version)."""
    history = registry.champion_history(name)
    remaining = after_rollback(history)
    target = remaining[-1]
    store.mark_alias(name, CHAMPION, target)
    registry.set_alias(name, CHAMPION, target)
    registry.set_champion_history(name, remaining)
    return history[-1], target
