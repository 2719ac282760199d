"""Quality gate and champion history: when a model may be promoted, and what rollback restores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import GateFailedError, ModelNotFoundError


class GatePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = "accuracy"
    threshold: float = Field(ge=0.0, le=1.0)


class GateDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    value: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.value >= self.threshold

    def describe(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        return f"gate {verdict}: {self.metric} {self.value:.4f} vs threshold {self.threshold:.4f}"

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise GateFailedError(self.describe())


def evaluate_gate(metrics: Mapping[str, float], policy: GatePolicy) -> GateDecision:
    if policy.metric not in metrics:
        raise KeyError(f"metric {policy.metric!r} was not computed (have: {sorted(metrics)})")
    return GateDecision(
        metric=policy.metric, value=float(metrics[policy.metric]), threshold=policy.threshold
    )


def with_new_champion(history: Sequence[str], version: str) -> list[str]:
    """History after promoting ``version``; the last entry is the current champion."""
    if history and history[-1] == version:
        return list(history)
    return [*history, version]


def after_rollback(history: Sequence[str]) -> list[str]:
    """History after rolling back to the previous champion."""
    if len(history) < 2:
        raise ModelNotFoundError(
            "no previous champion to roll back to"
            + (f" (version {history[-1]} is the only one ever promoted)" if history else "")
        )
    return list(history[:-1])
