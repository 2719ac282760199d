"""The composition root: the one place that wires settings to adapters and use cases."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infrastructure.config.settings import MlopsSettings
from shared.errors import ConfigError
from shared.logging import configure_logging

if TYPE_CHECKING:
    from application.inference.batch_scoring import ScoringProgress
    from application.monitoring.monitor_report import MonitorReport, ReportThresholds
    from application.registry.canary import CanaryOutcome
    from application.training.jobs import TabularJobConfig, TextJobConfig
    from application.training.train_tabular import TrainingOutcome
    from application.training.train_text import TextTrainingOutcome
    from domain.models.contract import ServingContract
    from domain.ports import AuditLog, PredictionLog
    from domain.serving.canary import CanaryConfig
    from infrastructure.audit.jsonl_audit_log import JsonlAuditLog
    from infrastructure.batch.file_scoring import ScoringRequest, ScoringResult
    from infrastructure.ml.dataset_loader import PandasDatasetLoader
    from infrastructure.ml.sklearn_trainer import SklearnTabularTrainer
    from infrastructure.ml.text.trainer import TransformersTextTrainer
    from infrastructure.store.bento_model_store import BentoModelStore
    from infrastructure.tracking.mlflow_registry import MlflowModelRegistry
    from infrastructure.tracking.mlflow_tracker import MlflowExperimentTracker


def prepare_environment(settings: MlopsSettings) -> None:
    """Create the state folders and point BentoML at the configured store.

    BentoML reads ``BENTOML_HOME`` once, on first use of its store, so this must run before
    any BentoML model or Bento is touched in the process.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.bentoml_home.mkdir(parents=True, exist_ok=True)
    os.environ["BENTOML_HOME"] = str(settings.bentoml_home)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    # MLflow otherwise warns on every run about git metadata it cannot find.
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    configure_logging(settings.log_level)


@dataclass(frozen=True)
class TeeAuditLog:
    """Writes every event to the audit log and shows it (the CLI's progress lines)."""

    log: AuditLog
    also: AuditLog

    def append(self, event: Mapping[str, Any]) -> None:
        self.log.append(event)
        self.also.append(event)


@dataclass
class Container:
    """Adapters built lazily, once per process, from one settings object."""

    settings: MlopsSettings

    @cached_property
    def registry(self) -> MlflowModelRegistry:
        from infrastructure.tracking.mlflow_registry import MlflowModelRegistry

        return MlflowModelRegistry(self.settings.tracking_uri, self.settings.registry_uri)

    @cached_property
    def tracker(self) -> MlflowExperimentTracker:
        from infrastructure.tracking.mlflow_tracker import MlflowExperimentTracker

        return MlflowExperimentTracker(
            self.settings.tracking_uri, self.settings.registry_uri, self.settings.artifact_location
        )

    @cached_property
    def store(self) -> BentoModelStore:
        from infrastructure.store.bento_model_store import BentoModelStore

        return BentoModelStore()

    @cached_property
    def audit(self) -> JsonlAuditLog:
        from infrastructure.audit.jsonl_audit_log import JsonlAuditLog

        return JsonlAuditLog(self.settings.home / "audit.jsonl")

    def run_canary(
        self,
        name: str,
        url: str,
        config: CanaryConfig,
        progress: AuditLog | None = None,
        api_key: str | None = None,
    ) -> CanaryOutcome:
        """The canary against the service at ``url``; champion moves only through promote."""
        from application.registry.canary import run_canary
        from application.registry.lifecycle import promote
        from infrastructure.serving.canary_client import HttpCanaryTarget, SystemClock

        audit: AuditLog = self.audit
        if progress is not None:
            audit = TeeAuditLog(self.audit, progress)
        return run_canary(
            name,
            HttpCanaryTarget(url, api_key=api_key),
            self.registry,
            lambda version: promote(self.registry, self.store, name, version),
            audit,
            SystemClock(),
            config,
        )

    def score_file(
        self,
        request: ScoringRequest,
        on_start: Callable[[str, int], None] | None = None,
        on_progress: Callable[[ScoringProgress], None] | None = None,
    ) -> ScoringResult:
        """A file scored offline by a stored version (``mlops score``)."""
        from infrastructure.batch.file_scoring import score_file

        return score_file(request, on_start, on_progress)

    def prediction_log(self, url: str = "") -> PredictionLog:
        """The services' shared log: ``url`` as PREDICTION_LOG_URL, empty = MLOPS_HOME's."""
        from infrastructure.monitoring.prediction_logs import open_prediction_log

        return open_prediction_log(url, self.settings.home)

    def stored_contracts(self, name: str) -> dict[str, ServingContract]:
        """The serving contract of every version of ``name`` in the BentoML store."""
        import bentoml

        from infrastructure.store.bento_model_store import stored_contract

        return {
            version: stored_contract(bentoml.models.get(tag))
            for version, tag in self.store.list_tags(name).items()
        }

    def monitor_report(
        self,
        name: str,
        since: float,
        until: float,
        thresholds: ReportThresholds,
        folder: Path,
        log_url: str = "",
        to_mlflow: bool = True,
    ) -> tuple[MonitorReport, list[Path], dict[str, str | None]]:
        """Builds the report over the log, writes its files to ``folder`` and logs them to
        the MLflow run of every version it covers (with ``monitor.*`` version tags)."""
        from application.monitoring.monitor_report import build_monitor_report
        from domain.monitoring.drift_inputs import drift_values
        from infrastructure.config.settings import ServingSettings
        from infrastructure.monitoring.report_rendering import write_report

        report = build_monitor_report(
            name,
            self.prediction_log(log_url).between(name, since, until),
            self.stored_contracts(name),
            drift_values,
            since,
            until,
            ServingSettings().drift_config(),
            thresholds,
        )
        files = write_report(report, folder)
        runs: dict[str, str | None] = {}
        if to_mlflow:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(until))
            for group in report.groups:
                if group.version in runs:
                    continue
                runs[group.version] = self.registry.log_version_artifacts(
                    name, group.version, folder, f"monitoring/{stamp}"
                )
                self.registry.set_version_tags(
                    name,
                    group.version,
                    {"monitor.last_report": stamp, "monitor.flags": str(len(report.flags))},
                )
        return report, files, runs

    def export_predictions(
        self,
        name: str,
        since: float,
        until: float,
        output: Path,
        labelled_only: bool = True,
        log_url: str = "",
    ) -> int:
        """The log's predictions of ``name`` as a dataset a training config reads: tabular
        rows with the schema's feature columns and the target (the label given as
        feedback), or text rows ``text``/``label``. Format by suffix: csv, tsv, jsonl,
        parquet. Returns the rows written."""
        import pandas as pd

        records = [
            r
            for r in self.prediction_log(log_url).between(name, since, until)
            if r.variant != "shadow" and (r.actual is not None or not labelled_only)
        ]
        contracts = self.stored_contracts(name)
        schemas = {contracts[r.version].feature_schema for r in records if r.version in contracts}
        schema = next(iter(schemas)) if len(schemas) == 1 else None
        if len({tuple(s.names) if s else None for s in schemas}) > 1:
            raise ConfigError(
                f"{name}: the exported versions have different feature columns; "
                "export a time window served by one schema (--since/--until)"
            )
        if schema is not None:
            frame = pd.DataFrame([list(r.inputs) for r in records], columns=schema.names)
            frame[schema.target] = [r.actual for r in records]
        else:
            frame = pd.DataFrame(
                {"text": [r.inputs for r in records], "label": [r.actual for r in records]}
            )
        if not labelled_only:
            frame["predicted"] = [r.label for r in records]
        output.parent.mkdir(parents=True, exist_ok=True)
        suffix = output.suffix.lower()
        if suffix == ".parquet":
            frame.to_parquet(output, index=False)
        elif suffix == ".jsonl":
            frame.to_json(output, orient="records", lines=True)
        elif suffix in (".csv", ".tsv"):
            frame.to_csv(output, index=False, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise ConfigError(f"--output: {output.name}: use .csv, .tsv, .jsonl or .parquet")
        return len(frame)

    @cached_property
    def dataset_loader(self) -> PandasDatasetLoader:
        from infrastructure.ml.dataset_loader import PandasDatasetLoader

        return PandasDatasetLoader()

    @cached_property
    def text_trainer(self) -> TransformersTextTrainer:
        from infrastructure.ml.text.trainer import TransformersTextTrainer

        return TransformersTextTrainer()

    @cached_property
    def tabular_trainer(self) -> SklearnTabularTrainer:
        from infrastructure.ml.sklearn_trainer import SklearnTabularTrainer

        return SklearnTabularTrainer()

    def run_tabular_training(
        self, job: TabularJobConfig, progress: Callable[[str], None] | None = None
    ) -> TrainingOutcome:
        """The tabular training use case wired to this container's adapters."""
        from application.training.train_tabular import train_tabular

        return train_tabular(
            job,
            self.dataset_loader,
            self.tabular_trainer,
            self.tracker,
            self.registry,
            self.store,
            progress=progress,
        )

    def run_text_training(
        self, job: TextJobConfig, workdir: Path, progress: Callable[[str], None] | None = None
    ) -> TextTrainingOutcome:
        """The text fine-tuning use case wired to this container's adapters.

        The MLflow tracker is also the model logger: it logs the pyfunc model to the run.
        """
        from application.training.train_text import train_text

        return train_text(
            job,
            self.dataset_loader,
            self.text_trainer,
            self.tracker,
            self.tracker,
            self.registry,
            self.store,
            workdir,
            progress=progress,
        )


def bootstrap(settings: MlopsSettings | None = None) -> Container:
    settings = settings or MlopsSettings()
    prepare_environment(settings)
    return Container(settings=settings)
