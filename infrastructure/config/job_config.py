"""Read job configs from YAML into the frozen pydantic models the use cases take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from application.training.jobs import TabularJobConfig, TextJobConfig
from shared.errors import ConfigError


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem, each naming the field by its dotted path."""
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {location}: {problem['msg']}")
    return f"invalid config {source}:\n" + "\n".join(lines)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config {path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return data


def resolve_dataset_path(source: str, config_dir: Path) -> str:
    """Relative file paths are tried against the working directory, then the config's folder."""
    candidate = Path(source).expanduser()
    if candidate.exists() or candidate.is_absolute():
        return str(candidate)
    beside_config = config_dir / candidate
    return str(beside_config) if beside_config.exists() else source


def job_kind(path: Path) -> str:
    """``tabular`` (the default) or ``text``, from the config's ``kind`` key."""
    return str(read_yaml_mapping(path).get("kind", "tabular"))


def load_tabular_job(path: Path) -> TabularJobConfig:
    data = read_yaml_mapping(path)
    try:
        job = TabularJobConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, str(path))) from error
    source = resolve_dataset_path(job.dataset.source, path.parent)
    if source != job.dataset.source:
        job = job.model_copy(update={"dataset": job.dataset.model_copy(update={"source": source})})
    from infrastructure.ml.sklearn_trainer import check_estimator_params

    for index, candidate in enumerate(job.candidates):
        check_estimator_params(candidate.estimator, candidate.params, f"candidates.{index}.params")
    return job


def load_text_job(path: Path) -> TextJobConfig:
    """Text fine-tuning job; dataset file paths resolve like tabular ones."""
    data = read_yaml_mapping(path)
    try:
        job = TextJobConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, str(path))) from error
    files = {
        name: resolve_dataset_path(value, path.parent)
        for name in ("train", "validation", "test", "source")
        if (value := getattr(job.dataset, name)) is not None
    }
    return job.model_copy(update={"dataset": job.dataset.model_copy(update=files)})
