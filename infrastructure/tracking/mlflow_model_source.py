"""Aliases read from the MLflow registry; a version missing from the local BentoML store is
pulled from MLflow into it first.

This is the source for a service that cannot see the training machine's store (a container
in production): it needs only MLflow (``MLOPS_TRACKING_URI``, and the artifact store behind
it) and a writable local store (``BENTOML_HOME``). Each pulled version keeps its registry
labels and the contract training logged with its run, so it serves exactly like a version
saved by training.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from pathlib import Path

import mlflow
import mlflow.artifacts
import mlflow.sklearn
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from domain.models.contract import (
    HELD_OUT_ARTIFACT,
    SERVING_CONTRACT_ARTIFACT,
    TABULAR_TASK,
    ServingContract,
)
from infrastructure.store.bento_model_store import BentoModelStore
from shared.errors import ModelNotFoundError

logger = logging.getLogger(__name__)


class MlflowPullModelSource:
    def __init__(self, tracking_uri: str, registry_uri: str, store: BentoModelStore) -> None:
        self._tracking_uri = tracking_uri
        self._registry_uri = registry_uri
        self._client = MlflowClient(tracking_uri, registry_uri)
        self._store = store
        # One pull at a time: the watcher and an admin reload may ask at once.
        self._lock = threading.Lock()

    def tag_for_alias(self, name: str, alias: str) -> str | None:
        try:
            version = self._client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        with self._lock:
            local = self._store.find_tag(name, str(version.version))
            return local if local is not None else self._pull(name, version)

    def _pull(self, name: str, version: object) -> str:
        number = str(getattr(version, "version"))  # noqa: B009 - mlflow entities are untyped
        run_id = str(getattr(version, "run_id", "") or "")
        if not run_id:
            raise ModelNotFoundError(f"{name} v{number} has no MLflow run to pull from")
        with tempfile.TemporaryDirectory(prefix="mlops-pull-") as folder:
            try:
                path = self._client.download_artifacts(run_id, SERVING_CONTRACT_ARTIFACT, folder)
            except MlflowException as error:
                raise ModelNotFoundError(
                    f"{name} v{number}: its run has no {SERVING_CONTRACT_ARTIFACT} (versions "
                    "trained before the contract was logged can only be served from the store "
                    "they were saved in)"
                ) from error
            contract = ServingContract.from_metadata(json.loads(Path(path).read_text("utf-8")))
            labels = {
                "mlflow_run_id": run_id,
                "registered_model": name,
                "registered_version": number,
                "task": contract.task,
                "pulled_from": "mlflow",
            }
            uri = f"models:/{name}/{number}"
            mlflow.set_tracking_uri(self._tracking_uri)
            mlflow.set_registry_uri(self._registry_uri)
            if contract.task == TABULAR_TASK:
                model = mlflow.sklearn.load_model(uri)
                tag = self._store.save_classifier(name, model, labels, contract)
            else:
                local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=folder))
                # The pyfunc keeps the transformers folder (config, weights, tokenizer) as its
                # "model" artifact.
                configs = sorted((local / "artifacts").rglob("config.json"))
                if not configs:
                    raise ModelNotFoundError(f"{uri} holds no transformers model folder")
                tag = self._store.save_text_model(
                    name,
                    configs[0].parent,
                    labels,
                    contract,
                    test_examples=self._held_out(run_id, folder),
                )
        logger.info("pulled %s v%s from MLflow into the local store as %s", name, number, tag)
        return tag

    def _held_out(self, run_id: str, folder: str) -> list[tuple[str, str]]:
        """The run's held-out split (text, label), which guards quantized backends; none
        for runs that did not log it."""
        try:
            path = self._client.download_artifacts(run_id, HELD_OUT_ARTIFACT, folder)
        except MlflowException:
            return []
        frame = pd.read_parquet(path)
        return list(zip(frame["text"].astype(str), frame["label"].astype(str), strict=True))
