"""Automated canary analysis: is the challenger at least as good as the champion?

Modelled on Argo Rollouts / Flagger: the challenger's weight goes up in steps; after each
``interval`` the two live variants are compared on what the users of this project care about,
error rate, p99 latency and accuracy from feedback. A check passes only with enough data:
no traffic, or fewer labels than ``min_labels``, is *inconclusive*, never a pass.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.stats import fisher_exact


class CanaryConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    interval_s: float = Field(default=60.0, gt=0.0, description="seconds between analyses")
    step_weights: tuple[float, ...] = Field(default=(5.0, 25.0, 50.0, 100.0), min_length=1)
    failure_limit: int = Field(default=1, ge=0, description="failed analyses tolerated")
    inconclusive_limit: int = Field(default=3, ge=0, description="analyses without enough data")
    min_requests: int = Field(default=50, ge=1, description="answered requests per variant")
    min_labels: int = Field(default=100, ge=1, description="labelled predictions per variant")
    max_error_rate_increase: float = Field(default=0.01, ge=0.0, le=1.0)
    max_p99_ratio: float = Field(default=1.5, gt=0.0, description="challenger p99 / champion")
    p_value: float = Field(
        default=0.05, gt=0.0, lt=1.0, description="one-sided test: challenger less accurate"
    )

    @field_validator("step_weights")
    @classmethod
    def _rising_percentages(cls, weights: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < w <= 100.0 for w in weights):
            raise ValueError("each step weight must be in (0, 100]")
        if list(weights) != sorted(set(weights)):
            raise ValueError("step weights must rise strictly")
        return weights


class VariantFigures(BaseModel):
    """What a service reported about one variant (counts since the version was loaded)."""

    model_config = ConfigDict(frozen=True)

    version: str
    requests: int
    server_errors: int
    p99_ms: float | None
    labelled: int
    correct: int


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Analysis(BaseModel):
    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    reasons: list[str]
    accuracy_p_value: float | None = None


def _error_rate(figures: VariantFigures) -> float:
    total = figures.requests + figures.server_errors
    return figures.server_errors / total if total else 0.0


def analyse(champion: VariantFigures, challenger: VariantFigures, config: CanaryConfig) -> Analysis:
    """Compare the challenger with the champion; any failed check fails the analysis.

    Accuracy: Fisher's exact test of "the challenger is less accurate" on the labelled
    predictions of each (one-sided, ``p_value``); a difference that could be chance passes.
    """
    missing = []
    for name, figures in (("champion", champion), ("challenger", challenger)):
        if figures.requests < config.min_requests:
            missing.append(f"{name}: {figures.requests} requests < {config.min_requests}")
        if figures.labelled < config.min_labels:
            missing.append(f"{name}: {figures.labelled} labels < {config.min_labels}")
    if missing:
        return Analysis(verdict=Verdict.INCONCLUSIVE, reasons=missing)

    failures = []
    champion_errors, challenger_errors = _error_rate(champion), _error_rate(challenger)
    if challenger_errors > champion_errors + config.max_error_rate_increase:
        failures.append(
            f"error rate {challenger_errors:.2%} > champion's {champion_errors:.2%} "
            f"+ {config.max_error_rate_increase:.2%}"
        )
    if champion.p99_ms and challenger.p99_ms:
        ratio = challenger.p99_ms / champion.p99_ms
        if ratio > config.max_p99_ratio:
            failures.append(f"p99 {challenger.p99_ms:.1f} ms is {ratio:.2f}x the champion's")
    table = [
        [challenger.correct, challenger.labelled - challenger.correct],
        [champion.correct, champion.labelled - champion.correct],
    ]
    p_value = float(fisher_exact(table, alternative="less").pvalue)
    if p_value < config.p_value:
        failures.append(
            f"accuracy {challenger.correct / challenger.labelled:.3f} is below the champion's "
            f"{champion.correct / champion.labelled:.3f} (Fisher p={p_value:.4f})"
        )
    if failures:
        return Analysis(verdict=Verdict.FAIL, reasons=failures, accuracy_p_value=p_value)
    return Analysis(
        verdict=Verdict.PASS,
        reasons=[
            f"accuracy {challenger.correct / challenger.labelled:.3f} vs "
            f"{champion.correct / champion.labelled:.3f} (p={p_value:.3f}), errors "
            f"{challenger_errors:.2%} vs {champion_errors:.2%}"
        ],
        accuracy_p_value=p_value,
    )
