"""Process-wide settings, read from ``MLOPS_*`` environment variables.

Defaults keep everything inside a project-local ``.mlops/`` folder so that a demo never
writes into a user's global MLflow or BentoML store unless told to. Building a settings
object creates nothing on disk; :func:`infrastructure.bootstrap.prepare_environment` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_URI_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@]+):(?P<secret>[^@/]+)@")


def mask_secrets(uri: str) -> str:
    """Hide the password part of ``scheme://user:password@host`` URIs."""
    return _URI_PASSWORD.sub(r"\g<scheme>\g<user>:***@", uri)


class MlopsSettings(BaseSettings):
    """Settings in effect; environment (``MLOPS_`` prefix) overrides the defaults."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", frozen=True, extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.cwd() / ".mlops",
        description="Project-local state folder; other defaults live under it.",
    )
    tracking_uri: str = Field(
        default="", description="MLflow tracking URI (default: SQLite file in `home`)."
    )
    registry_uri: str = Field(default="", description="MLflow registry URI (default: tracking).")
    artifact_location: str = Field(
        default="", description="Where new MLflow experiments store artifacts."
    )
    bentoml_home: Path = Field(
        default=Path(), description="BentoML model/Bento store (default: `home`/bentoml)."
    )
    log_level: LogLevel = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _derive_defaults_from_home(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        home = Path(values.get("home") or Path.cwd() / ".mlops").expanduser().resolve()
        values["home"] = home
        if not values.get("tracking_uri"):
            values["tracking_uri"] = f"sqlite:///{home / 'mlflow.db'}"
        if not values.get("registry_uri"):
            values["registry_uri"] = values["tracking_uri"]
        if not values.get("artifact_location"):
            values["artifact_location"] = str(home / "mlartifacts")
        if not values.get("bentoml_home") or str(values["bentoml_home"]) in ("", "."):
            values["bentoml_home"] = home / "bentoml"
        values["bentoml_home"] = Path(values["bentoml_home"]).expanduser().resolve()
        if isinstance(values.get("log_level"), str):
            values["log_level"] = values["log_level"].upper()
        return values

    def describe(self) -> dict[str, str]:
        """Settings as display strings, with secrets masked."""
        return {
            "home": str(self.home),
            "tracking_uri": mask_secrets(self.tracking_uri),
            "registry_uri": mask_secrets(self.registry_uri),
            "artifact_location": mask_secrets(self.artifact_location),
            "bentoml_home": str(self.bentoml_home),
            "log_level": self.log_level,
        }
