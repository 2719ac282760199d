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
