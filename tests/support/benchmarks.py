"""Running a benchmark script as a user runs it, on a model already in the store."""

from __future__ import annotations

import sys
from pathlib import Path

import bentoml


def stored_model_benchmark(module: str, home: Path, model: str) -> list[str]:
    """``python -m benchmarks.<module>`` in ``home`` on ``model``'s stored version, named by
    its BentoML tag (no MLflow lookup, no training); the test appends its own options."""
    tag = str(bentoml.models.list(model)[0].tag)
    return [sys.executable, "-m", f"benchmarks.{module}", "--home", str(home), "--model-tag", tag]
