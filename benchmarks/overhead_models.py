"""Stand-in models for the serving-overhead benchmark: the real text service, other scorers.

- ``zero``: scores nothing; every text gets the same fixed probabilities. What is left of a
  request's cost is the service's own.
- ``synthetic-gpu``: per batch of n texts, holds the GIL for c(n) (tokenization and kernel
  launches) and then sleeps g(n) (waiting for the GPU), both read off the H100 profile in
  ``benchmarks/reference/gpu_text_profile_h100.json`` (fp32) and interpolated between its
  batch sizes. It shows how the service would feed a GPU, on a machine without one.

Chosen by ``MLOPS_BENCH_MODEL``; the stored champion still supplies the contract (classes,
max length, reference profile), so the API, types and settings are the production ones.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from domain.data.text import TEXT_LENGTH_FEATURE
from domain.serving.model import DriftValues, LoadedModel
from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.loaders import SMOKE_TEXTS, loaded_model, stored_model

PROFILE = Path(__file__).resolve().parent / "reference" / "gpu_text_profile_h100.json"
MODEL_ENV = "MLOPS_BENCH_MODEL"


class ZeroCostScorer:
    def __init__(self, classes: tuple[str, ...]) -> None:
        self._classes = classes
        # Not uniform, so the argmax and label are those a real model would produce.
        row = np.linspace(1.0, 2.0, len(classes))
        self._row = row / row.sum()

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    def predict_proba(self, inputs: Sequence[Any]) -> np.ndarray:
        return np.tile(self._row, (len(inputs), 1))

    def drift_values(self, inputs: Sequence[Any]) -> DriftValues:
        lengths = np.fromiter((len(text) for text in inputs), dtype=float, count=len(inputs))
        return {TEXT_LENGTH_FEATURE: lengths}, {}

    def smoke_inputs(self) -> list[Any]:
        return list(SMOKE_TEXTS)


class GpuCurve:
    """c(n) and g(n) in seconds, interpolated over the profiled batch sizes."""

    def __init__(self, profile: dict[str, Any], precision: str = "fp32") -> None:
        batches = profile["precisions"][precision]["batches"]
        sizes = sorted(int(size) for size in batches)
        self.sizes = np.array(sizes, dtype=float)
        self.host_s = np.array(
            [(batches[str(s)]["tokenize_ms"] + batches[str(s)]["launch_ms"]) / 1000 for s in sizes]
        )
        self.wait_s = np.array(
            [
                max(0.0, batches[str(s)]["total_ms"] / 1000 - h)
                for s, h in zip(sizes, self.host_s, strict=True)
            ]
        )

    def host(self, n: int) -> float:
        return float(np.interp(n, self.sizes, self.host_s))

    def wait(self, n: int) -> float:
        return float(np.interp(n, self.sizes, self.wait_s))


class SyntheticGpuScorer(ZeroCostScorer):
    def __init__(self, classes: tuple[str, ...], curve: GpuCurve) -> None:
        super().__init__(classes)
        self._curve = curve

    def predict_proba(self, inputs: Sequence[Any]) -> np.ndarray:
        n = len(inputs)
        # A pure-Python spin holds the GIL as tokenization and eager launches do; a sleep
        # releases it as a thread waiting on a CUDA stream does.
        deadline = time.perf_counter() + self._curve.host(n)
        while time.perf_counter() < deadline:
            pass
        time.sleep(self._curve.wait(n))
        return super().predict_proba(inputs)


class BenchmarkModelLoader:
    """Loads the stored version's contract, and scores with the chosen stand-in."""

    def __init__(self, kind: str) -> None:
        if kind not in ("zero", "synthetic-gpu"):
            raise ValueError(f"{MODEL_ENV} must be zero or synthetic-gpu, not {kind!r}")
        self._kind = kind

    @cached_property
    def _curve(self) -> GpuCurve:
        return GpuCurve(json.loads(PROFILE.read_text()))

    def load(self, tag: str) -> LoadedModel:
        stored, contract = stored_model(tag)
        classes = tuple(contract.classes)
        scorer = (
            ZeroCostScorer(classes)
            if self._kind == "zero"
            else SyntheticGpuScorer(classes, self._curve)
        )
        return loaded_model(stored, contract, scorer)


def benchmark_loader(
    settings: TextServingSettings, on_cache: Callable[[str, int, int], None]
) -> BenchmarkModelLoader:
    return BenchmarkModelLoader(os.environ.get(MODEL_ENV, "zero"))
