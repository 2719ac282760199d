"""Monitors per served variant and version, and where feedback for a request id belongs.

Each (variant, version) has its own key in the shared log and its own metrics, so a
challenger's accuracy from feedback is never mixed with the champion's. Feedback finds the
request in the log, whichever worker (or replica) answered it; monitors of versions swapped
out stay for a while so that late feedback still moves the gauge of the version that
answered.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from application.monitoring.prediction_recorder import PredictionRecorder
from application.monitoring.serving_monitor import FeedbackOutcome, ServingMonitor, ServingStats
from domain.monitoring.prediction_log import LABELLED, PredictionRecord
from domain.serving.model import LoadedModel
from domain.serving.variants import SHADOW
from shared.errors import InvalidInputError, UnknownPredictionError

# Retired versions whose accuracy gauge feedback still moves (per service, all variants).
RETIRED_KEPT = 8
# Feedback can overtake its prediction's record: the worker that answered writes its
# records every few tens of milliseconds. An id not found yet is looked up again until then.
FEEDBACK_WAIT_S = 2.0
FEEDBACK_RETRY_S = 0.05

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
    def __init__(
        self,
        factory: MonitorFactory,
        recorder: PredictionRecorder,
        feedback_wait_s: float = FEEDBACK_WAIT_S,
    ) -> None:
        self._factory = factory
        self._recorder = recorder
        self._feedback_wait_s = feedback_wait_s
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

    def _records(self, request_id: str) -> list[PredictionRecord]:
        log = self._recorder.log
        records = log.records(request_id)
        if records:
            return records
        self._recorder.flush()  # it may still be in this worker's buffer
        deadline = time.monotonic() + self._feedback_wait_s
        while not (records := log.records(request_id)) and time.monotonic() < deadline:
            time.sleep(FEEDBACK_RETRY_S)  # or in another worker's
        return records

    def _monitor_of(self, record: PredictionRecord) -> ServingMonitor | None:
        with self._lock:
            active = self._active.get(record.variant)
            if active is not None and active[0].version == record.version:
                return active[1]
            return self._retired.get((record.variant, record.version))

    def feedback(self, request_id: str, label: str) -> AttributedFeedback:
        """Ground truth for ``request_id``, scored against the variant and version that
        answered it (and a shadow that scored the same request), whichever worker did.

        Blocking (it reads and writes the shared log): call it off the event loop.
        """
        records = self._records(request_id)
        live = [r for r in records if r.variant != SHADOW]
        if not live:
            raise UnknownPredictionError(
                f"request_id: no prediction {request_id!r} is recorded "
                "(unknown, not sampled into the log, or pruned)"
            )
        classes = list(live[0].probabilities)
        if label not in classes:
            raise InvalidInputError(
                f"label: unknown class {label!r}; expected one of {classes}", field="label"
            )
        labelled = self._recorder.log.label(request_id, label, time.time())
        answered: AttributedFeedback | None = None
        for record in labelled:
            monitor = self._monitor_of(record)
            accuracy = monitor.accuracy() if monitor is not None else None
            if monitor is not None and accuracy is not None and accuracy[0] is not None:
                monitor.metrics.set_accuracy(accuracy[0], accuracy[2])
            if record.variant == SHADOW or answered is not None:
                continue
            counts = self._recorder.log.counts(record.key)
            rolling = accuracy[0] if accuracy is not None else None
            answered = AttributedFeedback(
                outcome=FeedbackOutcome(
                    request_id=request_id,
                    predicted=record.label,
                    actual=label,
                    correct=record.label == label,
                    rolling_accuracy=rolling
                    if rolling is not None
                    else float(record.label == label),
                    labelled=int(counts.get(LABELLED, 1)),
                ),
                variant=record.variant,
                model_version=record.version,
            )
        if answered is None:
            raise UnknownPredictionError(
                f"request_id: no prediction {request_id!r} awaits feedback (already labelled)"
            )
        return answered

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
