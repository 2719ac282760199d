"""Fakes for the serving ports: scorers, a model source and a loader, all in memory."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from application.monitoring.prediction_recorder import PredictionRecorder
from application.monitoring.serving_monitor import ServingMonitor
from application.monitoring.variant_monitors import VariantMonitors
from domain.models.contract import ServingContract
from domain.monitoring.drift import DriftConfig
from domain.monitoring.prediction_log import LogKey
from domain.serving.model import DriftValues, LoadedModel
from infrastructure.monitoring.sqlite_prediction_log import SqlitePredictionLog
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.registry import fake_contract


class FakeScorer:
    """Always answers class ``answer``; can be slow, blocked on an event, or broken."""

    def __init__(
        self,
        classes: Sequence[str] = ("a", "b"),
        answer: int = 0,
        delay_s: float = 0.0,
        fail: bool = False,
        gate: threading.Event | None = None,
    ) -> None:
        self._classes = tuple(classes)
        self.answer = answer
        self.delay_s = delay_s
        self.fail = fail
        self.gate = gate
        self.batches: list[int] = []

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    def predict_proba(self, inputs: Sequence[Any]) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("broken model")
        self.batches.append(len(inputs))
        probabilities = np.full((len(inputs), len(self._classes)), 0.1 / (len(self._classes) - 1))
        probabilities[:, self.answer] = 0.9
        return probabilities

    def drift_values(self, inputs: Sequence[Any]) -> DriftValues:
        return {"x": np.asarray([float(v) for v in inputs])}, {}

    def smoke_inputs(self) -> list[Any]:
        return [0.0]


def loaded(version: str, scorer: FakeScorer | None = None, **contract: Any) -> LoadedModel:
    scorer = scorer or FakeScorer()
    base: ServingContract = fake_contract(scorer.classes)
    return LoadedModel(
        tag=f"m:{version}",
        name="m",
        version=version,
        contract=base.model_copy(update=contract),
        scorer=scorer,
    )


class FakeSource:
    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases = dict(aliases or {})

    def tag_for_alias(self, name: str, alias: str) -> str | None:
        return self.aliases.get(alias)


class FakeLoader:
    def __init__(self, models: dict[str, LoadedModel | Exception]) -> None:
        self.models = models
        self.loads: list[str] = []

    def load(self, tag: str) -> LoadedModel:
        self.loads.append(tag)
        model = self.models[tag]
        if isinstance(model, Exception):
            raise model
        return model


def variant_monitors(
    recorder: PredictionRecorder | None = None,
) -> tuple[VariantMonitors, dict[str, RecordingMetrics]]:
    """Monitors over a real SQLite prediction log in a temp folder (unless ``recorder``)."""
    metrics: dict[str, RecordingMetrics] = {}
    if recorder is None:
        folder = Path(tempfile.mkdtemp(prefix="mlops-log-"))
        recorder = PredictionRecorder(SqlitePredictionLog(folder / "predictions.db"))
    used = recorder

    def factory(variant: str, model: LoadedModel) -> ServingMonitor:
        metrics[f"{variant}:{model.version}"] = recording = RecordingMetrics()
        return ServingMonitor(
            LogKey(model.name, variant, model.version),
            model.contract.reference_profile,
            model.scorer.classes,
            recording,
            DriftConfig(),
            used,
            model.scorer.drift_values,
            feedback_window=100,
        )

    return VariantMonitors(factory, used, feedback_wait_s=0.0), metrics
