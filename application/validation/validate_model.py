"""Use case: re-evaluate a registered version on its held-out split and apply the gate."""

from __future__ import annotations

from dataclasses import dataclass

from domain.evaluation.classification import ClassificationReport, classification_report
from domain.models.policy import GateDecision, GatePolicy, evaluate_gate
from domain.models.version import ModelVersionInfo
from domain.ports import ModelRegistry
from shared.errors import ModelNotFoundError


@dataclass(frozen=True)
class ValidationResult:
    version: ModelVersionInfo
    report: ClassificationReport
    gate: GateDecision


def resolve_version(
    registry: ModelRegistry, name: str, alias: str | None, version: str | None
) -> ModelVersionInfo:
    if version is not None:
        return registry.get_version(name, version)
    alias = alias or "challenger"
    found = registry.get_by_alias(name, alias)
    if found is None:
        raise ModelNotFoundError(f"model {name!r} has no version with alias {alias!r}")
    return found


def validate_model(
    registry: ModelRegistry,
    name: str,
    alias: str | None = None,
    version: str | None = None,
    threshold: float | None = None,
) -> ValidationResult:
    """The gate threshold defaults to the one the version was trained under."""
    info = resolve_version(registry, name, alias, version)
    metric = info.tags.get("gate.metric", "accuracy")
    if threshold is None:
        recorded = info.tags.get("gate.threshold")
        if recorded is None:
            raise ModelNotFoundError(
                f"{name} v{info.version} records no gate threshold; pass --threshold"
            )
        threshold = float(recorded)
    features, labels = registry.load_evaluation_split(name, info.version)
    model = registry.load_classifier(name, info.version)
    predictions = [str(p) for p in model.predict(features)]
    classes = sorted(set(labels.astype(str)) | set(predictions))
    report = classification_report(labels.astype(str).tolist(), predictions, classes)
    gate = evaluate_gate(report.metrics(), GatePolicy(metric=metric, threshold=threshold))
    return ValidationResult(version=info, report=report, gate=gate)
