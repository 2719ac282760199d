"""Monitors per served variant and version, and where feedback for a request id belongs.

Each (variant, version) keeps its own windows, feedback and metrics, so a challenger's
accuracy from feedback is never mixed with the champion's. Monitors of versions swapped out
stay for a while so that late feedback still reaches the version that answered.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from application.monitoring.serving_monitor import FeedbackOutcome, ServingMonitor, ServingStats
from domain.serving.model import LoadedModel
from shared.errors import UnknownPredictionError

# Retired versions whose feedback is still accepted (per service, all variants together).
RETIRED_KEPT = 8

MonitorFactory = Callable[[str, LoadedModel], ServingMonitor]


class AttributedFeedback(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: FeedbackOutcome
    variant: str
    model_version: str


class ShadowStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    compared: int
    agreed: int
    agreement: float | None
    dropped: int
    failed: int


class VariantStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    variant: str
    model_version: str
    stats: ServingStats


class VariantMonitors:
    def __init__(self, factory: MonitorFactory) -> None:
        self._factory = factory
        self._active: dict[str, tuple[LoadedModel, ServingMonitor]] = {}
        self._retired: OrderedDict[tuple[str, str], ServingMonitor] = OrderedDict()
        self._shadow = {"compared": 0, "agreed": 0, "dropped": 0, "failed": 0}
        self._lock = threading.Lock()

    def monitor_for(self, variant: str, model: LoadedModel) -> ServingMonitor:
        """The monitor of ``variant`` serving ``model``; a new version gets a fresh one."""
        with self._lock:
            current = self._active.get(variant)
            if current is not None and current[0] is model:
                return current[1]
            monitor = self._factory(variant, model)
            if current is not None:
                self._retired[(variant, current[0].version)] = current[1]
                while len(self._retired) > RETIRED_KEPT:
                    self._retired.popitem(last=False)
            self._active[variant] = (model, monitor)
            return monitor

    def active(self, variant: str) -> ServingMonitor | None:
        with self._lock:
            current = self._active.get(variant)
        return current[1] if current else None

    def active_version(self, variant: str) -> str | None:
        with self._lock:
            current = self._active.get(variant)
        return current[0].version if current else None

    def retire(self, variant: str) -> None:
        with self._lock:
            current = self._active.pop(variant, None)
            if current is not None:
                self._retired[(variant, current[0].version)] = current[1]

    def feedback(self, request_id: str, label: str) -> AttributedFeedback:
        """Ground truth for ``request_id``, scored by the variant and version that answered."""
        with self._lock:
            candidates = [
                (variant, model.version, monitor)
                for variant, (model, monitor) in self._active.items()
            ] + [
                (variant, version, monitor) for (variant, version), monitor in self._retired.items()
            ]
        if candidates:
            candidates[0][2].check_label(label)
        answered: AttributedFeedback | None = None
        # The live variant that answered gets the label, and so does a shadow that scored the
        # same request (its accuracy is measured on the same traffic).
        for variant, version, monitor in candidates:
            if monitor.knows(request_id):
                outcome = monitor.feedback(request_id, label)
                if variant != "shadow" and answered is None:
                    answered = AttributedFeedback(
                        outcome=outcome, variant=variant, model_version=version
                    )
        if answered is not None:
            return answered
        raise UnknownPredictionError(
            f"request_id: no prediction {request_id!r} awaits feedback here "
            "(unknown, already labelled, or evicted)"
        )

    def record_request(self, variant: str | None, endpoint: str, status: int, s: float) -> None:
        monitor = self.active(variant or "champion") or self.active("champion")
        if monitor is not None:
            monitor.record_request(endpoint, status, s)

    def record_shadow(self, compared: int, agreed: int, dropped: int = 0, failed: int = 0) -> None:
        with self._lock:
            self._shadow["compared"] += compared
            self._shadow["agreed"] += agreed
            self._shadow["dropped"] += dropped
            self._shadow["failed"] += failed

    def shadow_stats(self) -> ShadowStats:
        with self._lock:
            counts = dict(self._shadow)
        compared = counts["compared"]
        return ShadowStats(
            compared=compared,
            agreed=counts["agreed"],
            agreement=counts["agreed"] / compared if compared else None,
            dropped=counts["dropped"],
            failed=counts["failed"],
        )

    def stats(self) -> list[VariantStats]:
        with self._lock:
            active = list(self._active.items())
        return [
            VariantStats(variant=variant, model_version=model.version, stats=monitor.stats())
            for variant, (model, monitor) in active
        ]
