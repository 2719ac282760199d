"""MLflow model registry: versions, aliases (champion/challenger) and champion history."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from domain.evaluation.classification import held_out_metrics
from domain.models.version import ModelVersionInfo, RunSummary
from domain.ports import Classifier
from shared.errors import ModelNotFoundError

HISTORY_TAG = "mlops.champion_history"
EVALUATION_ARTIFACT = "evaluation/test.parquet"


# A run logs dozens of params and metrics; the overview shows the first of each, by name.
LISTED_PARAMS = 12
LISTED_METRICS = 12


def _run_summary(run: Any) -> RunSummary:
    info, data = run.info, run.data
    held_out = held_out_metrics(data.metrics)
    metrics = held_out or dict(data.metrics)
    started = int(info.start_time or 0)
    ended = int(info.end_time or 0)
    return RunSummary(
        run_id=str(info.run_id),
        name=str(info.run_name or info.run_id),
        status=str(info.status),
        parent_run_id=data.tags.get("mlflow.parentRunId"),
        started_at_ms=started,
        duration_s=(ended - started) / 1000.0 if started and ended else None,
        params={k: str(data.params[k]) for k in sorted(data.params)[:LISTED_PARAMS]},
        metrics={k: float(metrics[k]) for k in sorted(metrics)[:LISTED_METRICS]},
    )


class MlflowModelRegistry:
    def __init__(self, tracking_uri: str, registry_uri: str) -> None:
        self._tracking_uri = tracking_uri
        self._registry_uri = registry_uri
        self._client_instance: MlflowClient | None = None

    @property
    def _client(self) -> MlflowClient:
        if self._client_instance is None:
            self._client_instance = MlflowClient(self._tracking_uri, self._registry_uri)
        return self._client_instance

    def _info(self, version: object) -> ModelVersionInfo:
        run_id = getattr(version, "run_id", None)
        metrics: dict[str, float] = {}
        if run_id:
            try:
                metrics = held_out_metrics(self._client.get_run(run_id).data.metrics)
            except MlflowException:
                metrics = {}
        return ModelVersionInfo(
            name=str(getattr(version, "name")),  # noqa: B009 - mlflow entities are untyped
            version=str(getattr(version, "version")),  # noqa: B009
            run_id=run_id,
            aliases=tuple(getattr(version, "aliases", ()) or ()),
            metrics=metrics,
            tags=dict(getattr(version, "tags", {}) or {}),
            created_at_ms=int(getattr(version, "creation_timestamp", 0) or 0),
        )

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        try:
            return self._info(self._client.get_model_version(name, str(version)))
        except MlflowException as error:
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}") from error

    def get_by_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        try:
            return self._info(self._client.get_model_version_by_alias(name, alias))
        except MlflowException:
            return None

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        try:
            versions = self._client.search_model_versions(f"name = '{name}'")
        except MlflowException as error:
            raise ModelNotFoundError(f"cannot list versions of {name!r}: {error}") from error
        # Search results leave aliases out; the registered model carries the mapping.
        aliases: dict[str, list[str]] = {}
        if versions:
            registered = self._client.get_registered_model(name)
            for alias, version in (registered.aliases or {}).items():
                aliases.setdefault(str(version), []).append(alias)
        infos = [
            self._info(v).model_copy(
                update={"aliases": tuple(sorted(aliases.get(str(v.version), [])))}
            )
            for v in versions
        ]
        return sorted(infos, key=lambda info: int(info.version))

    def recent_runs(self, name: str, limit: int) -> list[RunSummary]:
        try:
            versions = self._client.search_model_versions(f"name = '{name}'")
            experiments = {
                self._client.get_run(v.run_id).info.experiment_id for v in versions if v.run_id
            }
            if not experiments:
                return []
            runs = self._client.search_runs(
                sorted(experiments), order_by=["attributes.start_time DESC"], max_results=limit
            )
        except MlflowException as error:
            raise ModelNotFoundError(f"cannot list runs of {name!r}: {error}") from error
        return [_run_summary(run) for run in runs]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._client.set_registered_model_alias(name, alias, str(version))

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_model_version_tag(name, str(version), key, value)

    def log_version_artifacts(
        self, name: str, version: str, folder: Path, artifact_path: str
    ) -> str | None:
        run_id = self.get_version(name, version).run_id
        if run_id:
            self._client.log_artifacts(run_id, str(folder), artifact_path)
        return run_id

    def champion_history(self, name: str) -> list[str]:
        try:
            model = self._client.get_registered_model(name)
        except MlflowException as error:
            raise ModelNotFoundError(f"no registered model named {name!r}") from error
        raw = (model.tags or {}).get(HISTORY_TAG)
        return [str(v) for v in json.loads(raw)] if raw else []

    def set_champion_history(self, name: str, history: Sequence[str]) -> None:
        self._client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(list(history)))

    def load_classifier(self, name: str, version: str) -> Classifier:
        import mlflow
        import mlflow.models
        import mlflow.pyfunc
        import mlflow.sklearn

        mlflow.set_registry_uri(self._registry_uri)
        mlflow.set_tracking_uri(self._tracking_uri)
        uri = f"models:/{name}/{version}"
        # sklearn models load natively (no pyfunc schema enforcement on NaN categories);
        # text models are pyfuncs over a transformers folder.
        if "sklearn" in mlflow.models.get_model_info(uri).flavors:
            model: Classifier = mlflow.sklearn.load_model(uri)
        else:
            model = mlflow.pyfunc.load_model(uri)
        return model

    def load_evaluation_split(self, name: str, version: str) -> tuple[pd.DataFrame, pd.Series]:
        info = self.get_version(name, version)
        target = info.tags.get("target")
        if not info.run_id or not target:
            raise ModelNotFoundError(f"{name} v{version} has no held-out split recorded")
        with tempfile.TemporaryDirectory() as folder:
            try:
                local = self._client.download_artifacts(info.run_id, EVALUATION_ARTIFACT, folder)
            except (MlflowException, OSError) as error:
                raise ModelNotFoundError(
                    f"{name} v{version}: run {info.run_id} has no {EVALUATION_ARTIFACT}"
                ) from error
            frame = pd.read_parquet(Path(local))
        return frame.drop(columns=[target]), frame[target].astype(str)
