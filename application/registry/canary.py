"""Use case: step the challenger's traffic up, analyse each step, then promote or roll back.

Every decision is appended to the audit log and, at the end, written as tags on the
challenger's registry version. ``champion`` moves only through ``promote`` (gated), and only
when every step passed; any other ending sets the challenger's weight back to 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.ports import AuditLog, CanaryTarget, Clock, ModelRegistry
from domain.serving.canary import Analysis, CanaryConfig, Verdict, analyse

CanaryStatus = Literal["promoted", "rolled_back", "inconclusive"]
# What `mlops canary` exits with, so a CI job can branch on it.
EXIT_CODES: dict[str, int] = {"promoted": 0, "rolled_back": 1, "inconclusive": 3}


class CanaryStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    weight: float
    at: float
    analysis: Analysis


class CanaryOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: CanaryStatus
    version: str | None
    message: str
    steps: list[CanaryStep]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def run_canary(
    name: str,
    target: CanaryTarget,
    registry: ModelRegistry,
    promote_version: Callable[[str], object],
    audit: AuditLog,
    clock: Clock,
    config: CanaryConfig,
    actor: str = "mlops canary",
) -> CanaryOutcome:
    steps: list[CanaryStep] = []

    def record(what: str, **details: object) -> None:
        audit.append({"at": clock.now(), "actor": actor, "model": name, "action": what, **details})

    def finish(status: CanaryStatus, version: str | None, message: str) -> CanaryOutcome:
        if status != "promoted":
            target.set_challenger_weight(0.0)
        outcome = CanaryOutcome(status=status, version=version, message=message, steps=steps)
        record("canary.finished", status=status, version=version, message=message)
        if version is not None:
            registry.set_version_tags(
                name,
                version,
                {
                    "canary.status": status,
                    "canary.message": message[:500],
                    "canary.finished_at": f"{clock.now():.0f}",
                    # MLflow tag values are bounded (5000 chars); the full record is in the log.
                    "canary.steps": json.dumps(
                        [[s.weight, s.analysis.verdict.value] for s in steps]
                    )[:4900],
                },
            )
        return outcome

    _, challenger = target.figures()
    if challenger is None:
        return finish("inconclusive", None, "no challenger is loaded in the service")
    version = challenger.version
    record("canary.started", version=version, steps=list(config.step_weights))
    for weight in config.step_weights:
        target.set_challenger_weight(weight)
        record("canary.weight", version=version, before=None, after=weight)
        failures = inconclusive = 0
        while True:
            clock.sleep(config.interval_s)
            champion, challenger = target.figures()
            if champion is None or challenger is None or challenger.version != version:
                seen = challenger.version if challenger else None
                return finish(
                    "inconclusive", version, f"the challenger changed under the canary ({seen})"
                )
            analysis = analyse(champion, challenger, config)
            steps.append(CanaryStep(weight=weight, at=clock.now(), analysis=analysis))
            record(
                "canary.analysis",
                version=version,
                weight=weight,
                verdict=analysis.verdict.value,
                reasons=analysis.reasons,
            )
            if analysis.verdict is Verdict.PASS:
                break
            if analysis.verdict is Verdict.FAIL:
                failures += 1
                if failures > config.failure_limit:
                    return finish(
                        "rolled_back", version, f"at {weight}%: " + "; ".join(analysis.reasons)
                    )
            else:
                inconclusive += 1
                if inconclusive > config.inconclusive_limit:
                    return finish(
                        "inconclusive",
                        version,
                        f"at {weight}%: not enough data: " + "; ".join(analysis.reasons),
                    )
    try:
        promote_version(version)
    except Exception as error:
        return finish("rolled_back", version, f"every step passed but promotion failed: {error}")
    # The services swap the champion on their next alias check; the old split no longer
    # applies (both variants now point at one version).
    target.set_challenger_weight(0.0)
    record("promote", version=version, before="champion", after=version, outcome="promoted")
    return finish("promoted", version, f"promoted v{version} after {len(steps)} analyses")
