"""Ports: what the use cases need from the outside world. Adapters live in infrastructure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from domain.data.fingerprint import DatasetFingerprint
from domain.data.schema import FeatureSchema
from domain.evaluation.classification import ClassificationReport
from domain.models.contract import ServingContract
from domain.models.version import ModelVersionInfo, RunSummary
from domain.monitoring.drift import FeatureDrift, MissingDrift
from domain.monitoring.prediction_log import LogKey, PredictionRecord
from domain.serving.batch import Chunk, ValidatedChunk
from domain.serving.canary import VariantFigures
from domain.serving.jobs import BatchJob
from domain.serving.model import LoadedModel
from domain.serving.prediction import ScoredBatch


class Classifier(Protocol):
    """A fitted model that takes prepared feature frames."""

    def predict(self, features: pd.DataFrame) -> np.ndarray: ...

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray: ...


class DatasetLoader(Protocol):
    def load(self, source: str) -> pd.DataFrame: ...


class TabularTrainer(Protocol):
    def fit(
        self,
        estimator: str,
        params: Mapping[str, Any],
        features: pd.DataFrame,
        labels: pd.Series,
        schema: FeatureSchema,
        seed: int,
    ) -> Classifier: ...


class ExperimentTracker(Protocol):
    def training_run(
        self, experiment: str, run_name: str, tags: Mapping[str, str]
    ) -> AbstractContextManager[str]:
        """Open the parent run; yields its id. An exception marks the run FAILED."""
        ...

    def candidate_run(self, run_name: str) -> AbstractContextManager[str]:
        """Open a run nested in the current training run; yields its id."""
        ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_json(self, payload: Any, artifact_path: str) -> None: ...

    def log_frame(self, frame: pd.DataFrame, artifact_path: str) -> None: ...

    def log_confusion_matrix(self, report: ClassificationReport, artifact_path: str) -> None: ...

    def log_dataset(
        self, frame: pd.DataFrame, fingerprint: DatasetFingerprint, name: str, context: str
    ) -> None: ...

    def log_classifier(
        self,
        model: Classifier,
        registered_name: str,
        input_example: pd.DataFrame,
        tags: Mapping[str, str],
    ) -> ModelVersionInfo:
        """Log the model with signature and example, and register it as a new version."""
        ...


class TextModelLogger(Protocol):
    def log_text_classifier(
        self,
        model_dir: Path,
        registered_name: str,
        input_example: pd.DataFrame,
        max_length: int,
        tags: Mapping[str, str],
    ) -> ModelVersionInfo: ...


class ModelRegistry(Protocol):
    def get_version(self, name: str, version: str) -> ModelVersionInfo: ...

    def get_by_alias(self, name: str, alias: str) -> ModelVersionInfo | None: ...

    def list_versions(self, name: str) -> list[ModelVersionInfo]: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None: ...

    def log_version_artifacts(
        self, name: str, version: str, folder: Path, artifact_path: str
    ) -> str | None:
        """Files of ``folder`` logged to the run that produced ``version``; returns the run
        id (None when the version has no run)."""
        ...

    def champion_history(self, name: str) -> list[str]: ...

    def set_champion_history(self, name: str, history: Sequence[str]) -> None: ...

    def load_classifier(self, name: str, version: str) -> Classifier: ...

    def load_evaluation_split(self, name: str, version: str) -> tuple[pd.DataFrame, pd.Series]:
        """The held-out features and labels kept with the version's training run."""
        ...


class RunHistory(Protocol):
    def recent_runs(self, name: str, limit: int) -> list[RunSummary]:
        """The newest runs of the experiments that produced ``name``'s versions."""
        ...


class ModelStore(Protocol):
    def save_classifier(
        self,
        name: str,
        model: Classifier,
        labels: Mapping[str, str],
        contract: ServingContract,
    ) -> str:
        """Save into the serving store with its contract; returns the tag (name:version)."""
        ...

    def save_text_model(
        self,
        name: str,
        model_dir: Path,
        labels: Mapping[str, str],
        contract: ServingContract,
        test_examples: Sequence[tuple[str, str]] = (),
    ) -> str:
        """Save a transformers folder (weights + tokenizer) into the serving store, with the
        held-out (text, label) pairs that guard its quantized backends."""
        ...

    def find_tag(self, name: str, registry_version: str) -> str | None: ...

    def mark_alias(self, name: str, alias: str, registry_version: str | None) -> None:
        """Give ``alias`` to the stored model of ``registry_version`` and take it from others."""
        ...

    def list_tags(self, name: str) -> dict[str, str]:
        """registry version -> stored tag, for every stored model of ``name``."""
        ...


class ServingMetrics(Protocol):
    """Where a running service reports what it served (Prometheus in production)."""

    def record_predictions(
        self, endpoint: str, predicted: Sequence[str], confidences: Sequence[float]
    ) -> None: ...

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Every answered request, successful or not; 4xx/5xx are counted as errors."""
        ...

    def set_accuracy(self, accuracy: float, labels: int) -> None:
        """Rolling accuracy, and how many labels its window holds (alerts need a minimum)."""
        ...

    def set_drift(
        self,
        features: Sequence[FeatureDrift],
        drifted_share: float,
        prediction: FeatureDrift | None,
        window: int,
    ) -> None:
        """The latest drift report over a window of ``window`` rows."""
        ...

    def record_cache(self, hits: int, misses: int) -> None:
        """Response-cache lookups of one call (services with a cache)."""
        ...

    def record_missing(self, counts: Mapping[str, int]) -> None:
        """Missing values served in one call, per feature (only features with some)."""
        ...

    def set_missing_rates(self, missing: Sequence[MissingDrift]) -> None:
        """The window's missing rate per feature, next to the training one."""
        ...


class PredictionLog(Protocol):
    """The shared prediction and feedback log (SQLite under MLOPS_HOME, or Redis).

    Every method is safe to call from several threads and processes at once.
    """

    def append(self, records: Sequence[PredictionRecord]) -> None: ...

    def add_counts(self, counts: Mapping[LogKey, Mapping[str, float]]) -> None:
        """Adds to the named counters of each key (created at 0)."""
        ...

    def counts(self, key: LogKey) -> dict[str, float]: ...

    def records(self, request_id: str) -> list[PredictionRecord]:
        """Every record of ``request_id`` (its live answer, and a shadow's)."""
        ...

    def label(self, request_id: str, actual: str, at: float) -> list[PredictionRecord]:
        """Labels every record of ``request_id`` (the live answer and a shadow's) once, and
        counts ``labelled``/``correct`` for their keys; returns them labelled. Raises
        UnknownPredictionError if none is recorded or they are already labelled."""
        ...

    def recent(self, key: LogKey, limit: int) -> list[PredictionRecord]:
        """The newest ``limit`` records of ``key``, newest first."""
        ...

    def recent_labelled(self, key: LogKey, limit: int) -> list[PredictionRecord]:
        """The ``limit`` most recently labelled records of ``key``, newest first."""
        ...

    def between(self, model: str, since: float, until: float) -> list[PredictionRecord]:
        """Every record of ``model`` with ``since <= at < until``, oldest first."""
        ...

    def prune(self, before: float) -> int:
        """Drops records older than ``before``; returns how many."""
        ...


class TextClassifier(Protocol):
    classes: list[str]

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, max_tokens: int = 0
    ) -> np.ndarray: ...

    def predict(self, texts: Sequence[str]) -> list[str]: ...


class FittedTextModel(Protocol):
    """What a text trainer hands back: the best model, its saved folder and run figures."""

    @property
    def model(self) -> TextClassifier: ...

    @property
    def model_dir(self) -> Path: ...

    @property
    def device(self) -> str: ...

    @property
    def steps(self) -> int: ...

    @property
    def best_step(self) -> int: ...

    @property
    def best_metric(self) -> float: ...

    @property
    def stopped_early(self) -> bool: ...

    @property
    def train_seconds(self) -> float: ...

    @property
    def samples_per_second(self) -> float: ...

    @property
    def peak_memory_mb(self) -> float: ...

    @property
    def trainable_parameters(self) -> int: ...

    @property
    def total_parameters(self) -> int: ...


class TextTrainer(Protocol):
    def fit(
        self,
        spec: Any,
        train: tuple[Sequence[str], Sequence[int]],
        validation: tuple[Sequence[str], Sequence[int]],
        classes: Sequence[str],
        workdir: Path,
        on_metrics: Callable[[dict[str, float], int], None],
        progress: Callable[[str], None],
    ) -> FittedTextModel: ...


class ModelSource(Protocol):
    """Where a service learns which stored version an alias points at now."""

    def tag_for_alias(self, name: str, alias: str) -> str | None: ...


class ModelLoader(Protocol):
    """Loads a stored version (by tag) of the kind this loader serves, ready to score."""

    def load(self, tag: str) -> LoadedModel: ...


class CanaryTarget(Protocol):
    """The running service(s) a canary steers: traffic weight in, per-variant figures out."""

    def set_challenger_weight(self, weight: float) -> None: ...

    def figures(self) -> tuple[VariantFigures | None, VariantFigures | None]:
        """(champion, challenger) as the service reports them now; None when not loaded."""
        ...


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class AuditLog(Protocol):
    """Append-only record of state changes: who, what, when, before/after, outcome."""

    def append(self, event: Mapping[str, Any]) -> None: ...


class ChunkValidator(Protocol):
    """Turns a chunk's rows into model inputs with the service's own request validation."""

    def validate(self, chunk: Chunk) -> ValidatedChunk: ...

    def answer_extras(self, inputs: Sequence[Any]) -> dict[str, list[Any]]:
        """Fields the service's answer adds for these inputs beyond :class:`ScoredBatch`'s
        (tabular answers name unknown categories), as columns."""
        ...


class ScoredChunkSink(Protocol):
    """Where scored chunks go; remembers which are written so an interrupted run resumes."""

    def written(self) -> frozenset[int]:
        """Indexes of the chunks already written by an earlier, interrupted run."""
        ...

    def write(
        self,
        chunk: Chunk,
        validated: ValidatedChunk,
        scored: ScoredBatch | None,
        extras: Mapping[str, Sequence[Any]],
    ) -> None:
        """Writes the chunk's answers (None: every row was rejected) and rejects; once
        this returns the chunk is done."""
        ...


class BatchJobStore(Protocol):
    """Batch jobs shared by the workers of a service (and its replicas on one host).

    A worker takes a job with a lease and renews it as chunks are written; a job whose
    lease ran out (its worker died) is taken again by the next worker that asks.
    """

    def submit(self, job: BatchJob, max_active: int) -> bool:
        """Adds a queued job, unless ``max_active`` jobs of its model are queued or
        running (then False)."""
        ...

    def get(self, job_id: str) -> BatchJob | None: ...

    def claim(self, model_name: str, worker: str, lease_s: float, now: float) -> BatchJob | None:
        """The oldest queued job of ``model_name``, or a running one whose lease expired,
        now running under ``worker`` until ``now + lease_s``."""
        ...

    def update(self, job: BatchJob, worker: str, lease_s: float, now: float) -> bool:
        """Stores ``job``'s progress and renews the lease; False if ``worker`` no longer
        holds it (taken over after its lease ran out)."""
        ...

    def prune(self, before: float) -> list[str]:
        """Drops finished jobs finished before ``before``; returns their ids."""
        ...


@dataclass(frozen=True)
class OpenedJob:
    """A job's file ready to score: its chunks, the validation, where answers go."""

    chunks: Iterable[Chunk]
    validator: ChunkValidator
    sink: ScoredChunkSink
    rows_total: int
    finish: Callable[[], tuple[int, int]]  # joins the output; (scored, rejected) rows


class JobFiles(Protocol):
    """Where a service keeps its jobs' files (input, parts, output, rejects)."""

    def open(self, job: BatchJob, model: LoadedModel, restart: bool) -> OpenedJob: ...

    def remove(self, job_id: str) -> None: ...
