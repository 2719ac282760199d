"""What the registry knows about one model version."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelVersionInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...] = ()
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    created_at_ms: int = 0


class RunSummary(BaseModel):
    """One tracked training run, as the registry's overview lists it."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    name: str
    status: str
    parent_run_id: str | None = None
    started_at_ms: int = 0
    duration_s: float | None = None
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
