"""The canary controller, table-driven with a fake clock and a scripted service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from application.registry.canary import run_canary
from domain.serving.canary import CanaryConfig, VariantFigures, Verdict, analyse
from tests.fakes.registry import FakeModelRegistry

CONFIG = CanaryConfig(
    interval_s=30, step_weights=(5, 50, 100), failure_limit=0, inconclusive_limit=1,
    min_requests=50, min_labels=100,
)  # fmt: skip


def figures(version: str, accuracy: float, labelled: int = 400, errors: int = 0,
            requests: int = 1000, p99: float = 20.0) -> VariantFigures:  # fmt: skip
    return VariantFigures(
        version=version,
        requests=requests,
        server_errors=errors,
        p99_ms=p99,
        labelled=labelled,
        correct=round(accuracy * labelled),
    )


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class ScriptedService:
    """Reports the next scripted (champion, challenger) at each analysis (the first entry also
    answers the controller's look before it starts); the last entry repeats."""

    def __init__(self, script: list[tuple[VariantFigures | None, VariantFigures | None]]) -> None:
        self.script = [script[0], *script]
        self.weights: list[float] = []

    def set_challenger_weight(self, weight: float) -> None:
        self.weights.append(weight)

    def figures(self) -> tuple[VariantFigures | None, VariantFigures | None]:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


class ListAudit:
    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []

    def append(self, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))


GOOD, CHAMP = figures("7", 0.95), figures("6", 0.90)
WORSE = figures("7", 0.80)
FEW_LABELS = figures("7", 0.95, labelled=10)
NO_TRAFFIC = figures("7", 0.0, labelled=0, requests=0)
ERRORS = figures("7", 0.95, errors=100)
SLOW = figures("7", 0.95, p99=200.0)


@pytest.mark.parametrize(
    ("case", "script", "status", "weights", "promoted"),
    [
        ("better challenger", [(CHAMP, GOOD)], "promoted", [5, 50, 100, 0], True),
        ("less accurate", [(CHAMP, GOOD), (CHAMP, WORSE)], "rolled_back", [5, 50, 0], False),
        ("server errors", [(CHAMP, ERRORS)], "rolled_back", [5, 0], False),
        ("slow p99", [(CHAMP, SLOW)], "rolled_back", [5, 0], False),
        ("too few labels", [(CHAMP, FEW_LABELS)], "inconclusive", [5, 0], False),
        ("no traffic", [(CHAMP, NO_TRAFFIC)], "inconclusive", [5, 0], False),
        ("no challenger", [(CHAMP, None)], "inconclusive", [0], False),
        (
            "labels arrive late",
            [(CHAMP, FEW_LABELS), (CHAMP, GOOD)],
            "promoted",
            [5, 50, 100, 0],
            True,
        ),
        (
            "challenger replaced",
            [(CHAMP, GOOD), (CHAMP, figures("8", 0.95))],
            "inconclusive",
            [5, 50, 0],
            False,
        ),
    ],
)
def test_canary_outcomes(
    case: str,
    script: list[tuple[VariantFigures | None, VariantFigures | None]],
    status: str,
    weights: list[float],
    promoted: bool,
) -> None:
    service, audit, clock = ScriptedService(script), ListAudit(), FakeClock()
    registry = FakeModelRegistry()
    promotions: list[str] = []

    outcome = run_canary("m", service, registry, promotions.append, audit, clock, CONFIG)

    assert outcome.status == status, outcome.message
    assert service.weights == weights, "weight ends at 0 unless the canary promoted"
    assert promotions == (["7"] if promoted else [])
    assert audit.events[-1]["action"] == "canary.finished"
    assert audit.events[-1]["status"] == status
    if outcome.version is not None:
        tags = registry.version_tags("m", outcome.version)
        assert tags["canary.status"] == status
    assert outcome.exit_code == {"promoted": 0, "rolled_back": 1, "inconclusive": 3}[status]


def test_a_failed_promotion_gate_rolls_back() -> None:
    def refuse(version: str) -> None:
        raise RuntimeError(f"v{version} below the gate")

    service = ScriptedService([(CHAMP, GOOD)])
    outcome = run_canary(
        "m", service, FakeModelRegistry(), refuse, ListAudit(), FakeClock(), CONFIG
    )
    assert outcome.status == "rolled_back" and "below the gate" in outcome.message
    assert service.weights[-1] == 0


def test_a_small_accuracy_difference_is_not_a_failure() -> None:
    close = figures("7", 0.89)
    assert analyse(CHAMP, close, CONFIG).verdict is Verdict.PASS, "could be chance"
    clearly = analyse(CHAMP, WORSE, CONFIG)
    assert clearly.verdict is Verdict.FAIL and clearly.accuracy_p_value is not None
    assert clearly.accuracy_p_value < 0.05
