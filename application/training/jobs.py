"""Job configs the training use cases take. Loaded from YAML by infrastructure.config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.data.quality import QualityThresholds
from domain.models.policy import GatePolicy

EstimatorName = Literal["random_forest", "logistic_regression", "svc", "hist_gradient_boosting"]
SELECTABLE_METRICS = (
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "macro_precision",
    "macro_recall",
    "weighted_precision",
    "weighted_recall",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TabularDatasetConfig(_Frozen):
    source: str = Field(description="builtin name (iris, wine, breast_cancer) or a file path")
    target: str | None = Field(default=None, description="label column (builtins know theirs)")
    numeric_features: list[str] | None = None
    categorical_features: list[str] | None = None


class SplitConfig(_Frozen):
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    stratify: bool = True
    seed: int = 42


class CandidateConfig(_Frozen):
    name: str | None = None
    estimator: EstimatorName
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.estimator


class TabularJobConfig(_Frozen):
    kind: Literal["tabular"] = "tabular"
    experiment: str = "tabular"
    registered_model_name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=63)
    dataset: TabularDatasetConfig
    split: SplitConfig = SplitConfig()
    quality: QualityThresholds = QualityThresholds()
    candidates: list[CandidateConfig] = Field(min_length=1)
    selection_metric: str = "accuracy"
    gate: GatePolicy

    @field_validator("selection_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in SELECTABLE_METRICS:
            raise ValueError(f"must be one of {', '.join(SELECTABLE_METRICS)}")
        return value

    @model_validator(mode="after")
    def _unique_candidate_names(self) -> TabularJobConfig:
        labels = [candidate.label for candidate in self.candidates]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"candidate names must be unique; repeated: {duplicates}")
        if self.gate.metric not in SELECTABLE_METRICS:
            raise ValueError(f"gate.metric must be one of {', '.join(SELECTABLE_METRICS)}")
        return self
