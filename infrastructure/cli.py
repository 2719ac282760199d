"""The ``mlops`` command line: one entry point for every stage."""

from __future__ import annotations

import importlib.metadata
import platform

import typer
from rich.console import Console
from rich.table import Table

from infrastructure.config.settings import MlopsSettings

app = typer.Typer(
    name="mlops",
    help="bento-mlops: train, validate, promote and serve models with MLflow and BentoML.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

REPORTED_PACKAGES = (
    "bento-mlops",
    "bentoml",
    "mlflow",
    "scikit-learn",
    "torch",
    "transformers",
    "peft",
    "numpy",
    "pandas",
    "pydantic",
)


@app.callback()
def _root() -> None:
    """bento-mlops: train, validate, promote and serve models with MLflow and BentoML."""


def _installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@app.command()
def info() -> None:
    """Print package versions, the torch device that would be used and the settings in effect."""
    from infrastructure.ml.device import describe_device

    settings = MlopsSettings()
    versions = Table(title="Packages", show_header=True)
    versions.add_column("package")
    versions.add_column("version")
    versions.add_row("python", platform.python_version())
    for name in REPORTED_PACKAGES:
        versions.add_row(name, _installed_version(name))
    console.print(versions)
    console.print(f"[bold]Device:[/bold] {describe_device()}")
    effective = Table(title="Settings (env prefix MLOPS_)", show_header=True)
    effective.add_column("setting")
    effective.add_column("value")
    for key, value in settings.describe().items():
        effective.add_row(key, value)
    console.print(effective)


def main() -> None:  # pragma: no cover - console-script shim
    app()
