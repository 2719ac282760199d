"""The composition root: the one place that wires settings to adapters and use cases."""

from __future__ import annotations

import os
from dataclasses import dataclass

from infrastructure.config.settings import MlopsSettings
from shared.logging import configure_logging


def prepare_environment(settings: MlopsSettings) -> None:
    """Create the state folders and point BentoML at the configured store.

    BentoML reads ``BENTOML_HOME`` once, on first use of its store, so this must run before
    any BentoML model or Bento is touched in the process.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.bentoml_home.mkdir(parents=True, exist_ok=True)
    if settings.tracking_uri.startswith("sqlite:///"):
        settings.home.mkdir(parents=True, exist_ok=True)
    os.environ["BENTOML_HOME"] = str(settings.bentoml_home)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    configure_logging(settings.log_level)


@dataclass(frozen=True)
class Container:
    """Everything the CLI and services need, built once per process."""

    settings: MlopsSettings


def bootstrap(settings: MlopsSettings | None = None) -> Container:
    settings = settings or MlopsSettings()
    prepare_environment(settings)
    return Container(settings=settings)
