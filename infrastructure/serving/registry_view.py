"""The registry as the service's ``models`` API reads it.

Serving does not need the registry (a Bento carries its model, and its image leaves MLflow
out), so the overview says why it cannot be read instead of failing the call.
"""

from __future__ import annotations

import logging
from pathlib import Path

from application.registry.overview import RegistryOverview, registry_overview

logger = logging.getLogger(__name__)

RUN_LIMIT = 20
SQLITE = "sqlite:///"


class ServiceRegistryView:
    def __init__(self, model_name: str, tracking_uri: str, registry_uri: str) -> None:
        self._name = model_name
        self._tracking_uri = tracking_uri
        self._registry_uri = registry_uri

    def _unavailable(self, why: str) -> RegistryOverview:
        return RegistryOverview(model_name=self._name, versions=[], runs=[], error=why)

    def overview(self) -> RegistryOverview:
        uri = self._tracking_uri
        # MLflow would create an empty database at a missing SQLite path.
        if uri.startswith(SQLITE) and not Path(uri.removeprefix(SQLITE)).exists():
            return self._unavailable(
                f"no MLflow tracking store at {uri.removeprefix(SQLITE)} (MLOPS_TRACKING_URI)"
            )
        try:
            from infrastructure.tracking.mlflow_registry import MlflowModelRegistry
        except ImportError as error:
            return self._unavailable(f"MLflow is not installed with this service ({error})")
        registry = MlflowModelRegistry(uri, self._registry_uri)
        try:
            return registry_overview(registry, registry, self._name, RUN_LIMIT)
        except Exception as error:  # an unreachable tracking server must not fail the API
            logger.warning("registry overview of %s failed: %s", self._name, error)
            return self._unavailable(f"{type(error).__name__}: {error}")
