"""What a service records of its traffic, shared by every worker and replica.

One record per scored input (live variants and the shadow), its label once feedback
arrives, and counters per (model, variant, version). Workers write through their own
:class:`~application.monitoring.prediction_recorder.PredictionRecorder`; feedback, rolling
accuracy, drift windows, ``stats`` and the reports read what all of them wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LogKey:
    """Whose traffic: one version of a model as one variant served it."""

    model: str
    variant: str
    version: str


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One scored input. ``inputs`` is what the model scored (a row of feature values in
    schema order, or a normalized text); ``latency_ms`` is the time from joining the batch
    queue to scores ready (None for the shadow, which answers nobody)."""

    request_id: str
    at: float
    model: str
    version: str
    variant: str
    endpoint: str
    inputs: Any
    label: str
    probabilities: dict[str, float]
    latency_ms: float | None
    actual: str | None = None
    labelled_at: float | None = None

    @property
    def key(self) -> LogKey:
        return LogKey(self.model, self.variant, self.version)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


# Counter names kept per key (``PredictionLog.add_counts``); classes and error kinds are
# prefixed, so the names never collide.
PREDICTIONS = "predictions"
CONFIDENCE_SUM = "confidence_sum"
LABELLED = "labelled"
CORRECT = "correct"
CACHE_HITS = "cache_hits"
CACHE_MISSES = "cache_misses"
CLASS_PREFIX = "class:"
ERROR_PREFIX = "error:"
