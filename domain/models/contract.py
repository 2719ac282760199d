"""What training hands to serving: one typed contract, written and read only through here.

Training builds a :class:`ServingContract` and the store keeps it as the stored model's
metadata (``to_metadata``); services, benchmarks and tests read it back with
``from_metadata``. No caller spells a metadata key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.data.fingerprint import DatasetFingerprint
from domain.data.schema import FeatureSchema
from domain.monitoring.profile import ReferenceProfile

Task = Literal["tabular-classification", "text-classification"]
# Where training also logs the contract in the MLflow run (pulling a version needs it).
SERVING_CONTRACT_ARTIFACT = "serving_contract.json"
# A text run's held-out split (columns text, label): it guards quantized serving backends.
HELD_OUT_ARTIFACT = "evaluation/test.parquet"
TABULAR_TASK: Final = "tabular-classification"
TEXT_TASK: Final = "text-classification"


class GateRecord(BaseModel):
    """The gate the version was trained under and the value it reached."""

    model_config = ConfigDict(frozen=True)

    metric: str
    threshold: float
    value: float


class ServingContract(BaseModel):
    """Everything a service needs about a stored model besides its weights.

    ``classes`` are in the order of the model's probability columns. Tabular models carry
    their ``feature_schema``; text models their ``max_length`` and ``base_model``.
    """

    model_config = ConfigDict(frozen=True)

    task: Task
    classes: tuple[str, ...] = Field(min_length=2)
    # The registered version's held-out metrics, by plain name (accuracy, macro_f1, ...).
    metrics: dict[str, float]
    reference_profile: ReferenceProfile
    gate: GateRecord
    feature_schema: FeatureSchema | None = None
    max_length: int | None = None
    base_model: str | None = None
    method: str | None = None
    estimator: str | None = None
    candidate: str | None = None
    dataset_fingerprint: DatasetFingerprint | None = None
    training: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kind_has_its_parts(self) -> ServingContract:
        if self.task == TABULAR_TASK and self.feature_schema is None:
            raise ValueError("a tabular model's contract needs its feature_schema")
        if self.task == TEXT_TASK and self.max_length is None:
            raise ValueError("a text model's contract needs its max_length")
        return self

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe mapping the store keeps with the model."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], task: str | None = None) -> ServingContract:
        """Read a stored model's contract; ``task`` fills it in for models stored before the
        contract carried its own (their store labels have it)."""
        values = dict(metadata)
        if "task" not in values and task is not None:
            values["task"] = task
        return cls.model_validate(values)
