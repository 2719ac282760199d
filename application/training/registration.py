"""What every training use case does once its model is registered: label and link the copy
saved in the serving store, so services, `mlops models` and MLflow can find each other."""

from __future__ import annotations

from domain.models.contract import GateRecord, Task
from domain.models.policy import GateDecision
from domain.models.version import ModelVersionInfo
from domain.ports import ExperimentTracker, ModelRegistry
from shared.types import CHALLENGER


def store_labels(
    run_id: str, registered: ModelVersionInfo, dataset_sha256: str, task: Task
) -> dict[str, str]:
    """Labels of a newly stored model: it starts as the challenger."""
    return {
        "mlflow_run_id": run_id,
        "registered_model": registered.name,
        "registered_version": registered.version,
        "dataset_sha256": dataset_sha256,
        "alias": CHALLENGER,
        "task": task,
    }


def gate_record(gate: GateDecision) -> GateRecord:
    return GateRecord(metric=gate.metric, threshold=gate.threshold, value=gate.value)


def link_stored_model(
    registry: ModelRegistry,
    tracker: ExperimentTracker,
    registered: ModelVersionInfo,
    stored_tag: str,
) -> None:
    registry.set_version_tags(registered.name, registered.version, {"bentoml.tag": stored_tag})
    tracker.set_tags({"bentoml.tag": stored_tag, "registered_version": registered.version})
