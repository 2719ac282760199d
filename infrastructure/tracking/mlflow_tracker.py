"""MLflow experiment tracking: one parent run per training, one nested run per candidate."""

from __future__ import annotations

import importlib.metadata
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from domain.data.fingerprint import DatasetFingerprint
from domain.evaluation.classification import ClassificationReport
from domain.models.version import ModelVersionInfo
from domain.ports import Classifier
from infrastructure.tracking.mlflow_registry import MlflowModelRegistry

# MLflow caps a param value at 6000 characters; long feature lists are cut, not rejected.
MAX_PARAM_LENGTH = 500


SKLEARN_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")
TEXT_REQUIREMENTS = ("torch", "transformers", "tokenizers", "safetensors", "pandas", "numpy")


def _serving_requirements(dists: tuple[str, ...] = SKLEARN_REQUIREMENTS) -> list[str]:
    """Pinned requirements written with the model, so MLflow need not infer them (slow)."""
    pins = []
    for dist in dists:
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def plot_confusion_matrix(report: ClassificationReport) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.6 * len(report.labels) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    matrix = report.confusion_matrix
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(report.labels)), report.labels, rotation=45, ha="right")
    axis.set_yticks(range(len(report.labels)), report.labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"accuracy {report.accuracy:.3f} (n={report.samples})")
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if peak and count > peak / 2 else "black"
            axis.text(j, i, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    return figure


class MlflowExperimentTracker:
    def __init__(self, tracking_uri: str, registry_uri: str, artifact_location: str) -> None:
        self._tracking_uri = tracking_uri
        self._registry_uri = registry_uri
        self._artifact_location = artifact_location
        self._registry = MlflowModelRegistry(tracking_uri, registry_uri)
        self._experiment_ids: list[str] = []

    def _activate(self) -> MlflowClient:
        # The fluent API reads a process-wide URI; set it only when a run is about to start.
        mlflow.set_tracking_uri(self._tracking_uri)
        mlflow.set_registry_uri(self._registry_uri)
        return MlflowClient(self._tracking_uri, self._registry_uri)

    def _experiment_id(self, client: MlflowClient, name: str) -> str:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = self._artifact_location
        if "://" not in location:
            location = Path(location, name).resolve().as_uri()
        else:
            location = f"{location.rstrip('/')}/{name}"
        return str(client.create_experiment(name, artifact_location=location))

    @contextmanager
    def training_run(
        self, experiment: str, run_name: str, tags: Mapping[str, str]
    ) -> Iterator[str]:
        client = self._activate()
        experiment_id = self._experiment_id(client, experiment)
        self._experiment_ids.append(experiment_id)
        try:
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=run_name, tags=dict(tags)
            ) as run:
                yield run.info.run_id
        finally:
            self._experiment_ids.pop()

    @contextmanager
    def candidate_run(self, run_name: str) -> Iterator[str]:
        # Without the parent's experiment id MLflow files nested runs under the default one.
        experiment_id = self._experiment_ids[-1] if self._experiment_ids else None
        with mlflow.start_run(run_name=run_name, nested=True, experiment_id=experiment_id) as run:
            yield run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        mlflow.log_params({key: str(value)[:MAX_PARAM_LENGTH] for key, value in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        mlflow.log_metrics({key: float(value) for key, value in metrics.items()}, step=step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        mlflow.set_tags(dict(tags))

    def log_json(self, payload: Any, artifact_path: str) -> None:
        mlflow.log_dict(payload, artifact_path)

    def log_frame(self, frame: pd.DataFrame, artifact_path: str) -> None:
        path = Path(artifact_path)
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder, path.name)
            frame.to_parquet(local, index=False)
            mlflow.log_artifact(
                str(local), artifact_path=str(path.parent) if path.parent.parts else None
            )

    def log_confusion_matrix(self, report: ClassificationReport, artifact_path: str) -> None:
        import matplotlib.pyplot as plt

        figure = plot_confusion_matrix(report)
        try:
            mlflow.log_figure(figure, artifact_path)
        finally:
            plt.close(figure)

    def log_dataset(
        self, frame: pd.DataFrame, fingerprint: DatasetFingerprint, name: str, context: str
    ) -> None:
        from mlflow.data.pandas_dataset import from_pandas

        dataset = from_pandas(frame, name=name, digest=fingerprint.short)
        mlflow.log_input(
            dataset,
            context=context,
            tags={"sha256": fingerprint.sha256, "rows": str(fingerprint.rows)},
        )

    def log_classifier(
        self,
        model: Classifier,
        registered_name: str,
        input_example: pd.DataFrame,
        tags: Mapping[str, str],
    ) -> ModelVersionInfo:
        import mlflow.sklearn

        signature = infer_signature(input_example, model.predict(input_example))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=input_example,
            registered_model_name=registered_name,
            pip_requirements=_serving_requirements(),
            serialization_format="cloudpickle",
        )
        version = str(info.registered_model_version)
        self._registry.set_version_tags(registered_name, version, tags)
        return self._registry.get_version(registered_name, version)

    def log_text_classifier(
        self,
        model_dir: Path,
        registered_name: str,
        input_example: pd.DataFrame,
        max_length: int,
        tags: Mapping[str, str],
    ) -> ModelVersionInfo:
        """A pyfunc over the saved folder: predict(DataFrame with "text") -> class names."""
        import mlflow.pyfunc

        from infrastructure.tracking.text_pyfunc import TextClassifierPyfunc

        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=TextClassifierPyfunc(max_length=max_length),
            artifacts={"model": str(model_dir)},
            signature=infer_signature(input_example, pd.Series(["label"] * len(input_example))),
            registered_model_name=registered_name,
            pip_requirements=_serving_requirements(TEXT_REQUIREMENTS),
        )
        version = str(info.registered_model_version)
        self._registry.set_version_tags(registered_name, version, tags)
        return self._registry.get_version(registered_name, version)
