"""What the registry says of one model: its versions (metrics, aliases, gate) and the recent
training runs behind them. Read by the service's ``models`` API (the UI's Models page)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from domain.models.version import ModelVersionInfo, RunSummary
from domain.ports import ModelRegistry, RunHistory
from shared.errors import MlopsError


class RegistryOverview(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    versions: list[ModelVersionInfo] = Field(description="oldest first")
    runs: list[RunSummary] = Field(description="newest first")
    error: str | None = Field(
        default=None, description="why the registry could not be read (then both lists empty)"
    )


def registry_overview(
    registry: ModelRegistry, runs: RunHistory, name: str, run_limit: int
) -> RegistryOverview:
    try:
        versions = registry.list_versions(name)
        recent = runs.recent_runs(name, run_limit) if versions else []
    except MlopsError as error:
        return RegistryOverview(model_name=name, versions=[], runs=[], error=str(error))
    return RegistryOverview(model_name=name, versions=versions, runs=recent)
