"""What a running service knows about its own traffic: predictions, feedback, latency, drift.

One monitor per worker process. Prediction paths call :meth:`ServingMonitor.observe` after a
successful prediction only, so rejected requests never count as predictions. Drift is
recomputed every ``drift_every`` rows on the sliding window, not on every request.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus

import numpy as np
from pydantic import BaseModel, ConfigDict

from domain.monitoring.drift import (
    DriftConfig,
    FeatureDrift,
    MissingDrift,
    categorical_drift,
    drifted_share,
    missing_drift,
    numeric_drift,
)
from domain.monitoring.feedback import RollingAccuracy
from domain.monitoring.profile import CategoricalProfile, ReferenceProfile
from domain.ports import ServingMetrics
from shared.errors import InvalidInputError, UnknownPredictionError

LATENCY_WINDOW = 4096
PREDICTION_FEATURE = "predicted_class"


ERROR_KINDS = {
    HTTPStatus.BAD_REQUEST: "invalid_input",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    HTTPStatus.UNPROCESSABLE_ENTITY: "invalid_input",
    HTTPStatus.TOO_MANY_REQUESTS: "overloaded",
    HTTPStatus.SERVICE_UNAVAILABLE: "unavailable",
    HTTPStatus.GATEWAY_TIMEOUT: "timeout",
}


def new_request_ids(count: int) -> list[str]:
    """``count`` random 128-bit ids as 32 hex digits (uuid4's form, its randomness).

    One read of the OS's random source per batch: ``uuid4()`` per row was about 4% of a
    worker's time under load (profiled), the same bytes read 16 at a time.
    """
    blob = os.urandom(16 * count).hex()
    return [blob[i : i + 32] for i in range(0, 32 * count, 32)]


def error_kind(status: int) -> str:
    """Bounded label for an error status (Prometheus label values must stay few)."""
    if status in ERROR_KINDS:
        return ERROR_KINDS[HTTPStatus(status)]
    return "client_error" if status < 500 else "internal"


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    window: int
    features: list[FeatureDrift]
    drifted_share: float
    prediction: FeatureDrift | None
    # Live missing rate per feature against the training one (features that may be null).
    missing: list[MissingDrift] = []


class LatencySummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class FeedbackOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    predicted: str
    actual: str
    correct: bool
    rolling_accuracy: float
    labelled: int


class ServingStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    predictions: int
    by_class: dict[str, int]
    mean_confidence: float | None
    latency: LatencySummary
    errors: dict[str, int]
    rolling_accuracy: float | None
    labelled: int
    # The counts behind rolling_accuracy (its window), for tests of one accuracy against another.
    window_correct: int = 0
    window_labelled: int = 0
    drift: DriftReport
    cache_hits: int = 0
    cache_misses: int = 0


class ServingMonitor:
    def __init__(
        self,
        profile: ReferenceProfile,
        classes: Sequence[str],
        metrics: ServingMetrics,
        drift_config: DriftConfig,
        window: int = 500,
        drift_every: int = 50,
        feedback: RollingAccuracy | None = None,
        latency_endpoints: frozenset[str] = frozenset(),
        background: Callable[[Callable[[], object]], object] | None = None,
    ) -> None:
        """``background`` runs the periodic drift refresh (for example an executor's
        ``submit``); without it the refresh runs inline, in the call that made it due."""
        self._profile = profile
        self._classes = tuple(classes)
        self._metrics = metrics
        self._drift_config = drift_config
        self._drift_every = drift_every
        self._feedback = feedback or RollingAccuracy()
        # Only prediction endpoints feed the latency percentiles; every endpoint counts errors.
        self._latency_endpoints = latency_endpoints
        self._numeric: dict[str, deque[float]] = {
            name: deque(maxlen=window) for name in profile.numeric
        }
        self._categorical: dict[str, deque[str]] = {
            name: deque(maxlen=window) for name in profile.categorical
        }
        # Per feature, whether each recent row had no value; drift windows hold values only.
        self._missing: dict[str, deque[bool]] = {
            name: deque(maxlen=window) for name in (*profile.numeric, *profile.categorical)
        }
        self._predicted: deque[str] = deque(maxlen=window)
        self._class_counts: Counter[str] = Counter({name: 0 for name in self._classes})
        self._confidence_sum = 0.0
        self._predictions = 0
        self._rows_since_drift = 0
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._errors: Counter[str] = Counter()
        self._cache = Counter({"hits": 0, "misses": 0})
        self._drift = DriftReport(window=0, features=[], drifted_share=0.0, prediction=None)
        self._background = background
        self._refresh_queued = False
        # Predictions run in a worker thread while feedback/stats run on the event loop.
        self._lock = threading.Lock()

    def observe(
        self,
        endpoint: str,
        numeric: Mapping[str, Sequence[float] | np.ndarray],
        categorical: Mapping[str, Sequence[str | None]],
        predicted: Sequence[str],
        confidences: Sequence[float] | np.ndarray,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Record served rows; returns one request id per row for later feedback (new ones
        unless ``ids`` are given: a shadow records the live answer's ids).

        A missing value is NaN in ``numeric`` and None in ``categorical``: it is counted
        per feature and kept out of the value windows that drift is measured on.
        """
        ids = list(ids) if ids is not None else new_request_ids(len(predicted))
        missing_counts: dict[str, int] = {}
        with self._lock:
            for name, values in numeric.items():
                if name in self._numeric:
                    array = np.asarray(values, dtype=float)
                    gaps = np.isnan(array)
                    self._numeric[name].extend(array[~gaps].tolist())
                    self._missing[name].extend(gaps.tolist())
                    missing_counts[name] = int(gaps.sum())
            for name, labels in categorical.items():
                if name in self._categorical:
                    self._categorical[name].extend(v for v in labels if v is not None)
                    flags = [v is None for v in labels]
                    self._missing[name].extend(flags)
                    missing_counts[name] = sum(flags)
            self._predicted.extend(predicted)
            self._class_counts.update(predicted)
            self._confidence_sum += float(np.sum(confidences))
            self._predictions += len(predicted)
            for request_id, label in zip(ids, predicted, strict=True):
                self._feedback.record_prediction(request_id, label)
            self._rows_since_drift += len(predicted)
            due = self._rows_since_drift >= self._drift_every and not self._refresh_queued
            if due:
                self._rows_since_drift = 0
                self._refresh_queued = self._background is not None
        self._metrics.record_predictions(endpoint, predicted, list(map(float, confidences)))
        if any(missing_counts.values()):
            self._metrics.record_missing({k: v for k, v in missing_counts.items() if v})
        if due:
            if self._background is None:
                self.refresh_drift()
            else:
                # Off the batch path: the statistics over the windows took tens of ms every
                # few batches, which the requests of those batches waited out (the tail).
                try:
                    self._background(self._queued_refresh)
                except RuntimeError:  # the executor is shutting down: refresh here instead
                    self._queued_refresh()
        return ids

    def _queued_refresh(self) -> None:
        try:
            self.refresh_drift()
        finally:
            with self._lock:
                self._refresh_queued = False

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            if status < 400:
                if endpoint in self._latency_endpoints:
                    self._latencies.append(seconds)
            else:
                self._errors[error_kind(status)] += 1
        self._metrics.record_request(endpoint, status, seconds)

    def record_cache(self, hits: int, misses: int) -> None:
        with self._lock:
            self._cache.update(hits=hits, misses=misses)
        self._metrics.record_cache(hits, misses)

    def knows(self, request_id: str) -> bool:
        """Whether a prediction with this id awaits feedback here."""
        with self._lock:
            return self._feedback.knows(request_id)

    def check_label(self, actual: str) -> None:
        if actual not in self._classes:
            raise InvalidInputError(
                f"label: unknown class {actual!r}; expected one of {list(self._classes)}",
                field="label",
            )

    def feedback(self, request_id: str, actual: str) -> FeedbackOutcome:
        self.check_label(actual)
        with self._lock:
            if not self._feedback.knows(request_id):
                raise UnknownPredictionError(
                    f"request_id: no prediction {request_id!r} awaits feedback here "
                    "(unknown, already labelled, or evicted)"
                )
            predicted = self._feedback.peek(request_id)
            correct = self._feedback.record_truth(request_id, actual)
            accuracy = self._feedback.accuracy
            labelled = self._feedback.labelled
        assert accuracy is not None
        self._metrics.set_accuracy(accuracy)
        return FeedbackOutcome(
            request_id=request_id,
            predicted=predicted,
            actual=actual,
            correct=correct,
            rolling_accuracy=accuracy,
            labelled=labelled,
        )

    def refresh_drift(self) -> DriftReport:
        with self._lock:
            numeric = {name: np.fromiter(v, dtype=float) for name, v in self._numeric.items()}
            categorical = {name: list(v) for name, v in self._categorical.items()}
            gaps = {name: (sum(flags), len(flags)) for name, flags in self._missing.items()}
            predicted = list(self._predicted)
        config = self._drift_config
        if len(predicted) < config.min_window:
            return self._drift
        # A feature scores on the values that arrived; mostly-missing windows are too small to
        # tell (the missing rate itself is compared below).
        features = [
            numeric_drift(name, self._profile.numeric[name], values, config)
            for name, values in numeric.items()
            if values.size >= config.min_window
        ] + [
            categorical_drift(name, self._profile.categorical[name], values, config)
            for name, values in categorical.items()
            if len(values) >= config.min_window
        ]
        prediction = (
            categorical_drift(
                PREDICTION_FEATURE,
                CategoricalProfile(frequencies=self._profile.class_prior),
                predicted,
                config,
            )
            if self._profile.class_prior
            else None
        )
        missing = [
            missing_drift(name, self._profile.missing_rate.get(name, 0.0), count, rows, config)
            for name, (count, rows) in gaps.items()
            if rows
        ]
        report = DriftReport(
            window=len(predicted),
            features=features,
            drifted_share=drifted_share(features),
            prediction=prediction,
            missing=missing,
        )
        self._drift = report
        self._metrics.set_drift(report.features, report.drifted_share, report.prediction)
        self._metrics.set_missing_rates(missing)
        return report

    def stats(self) -> ServingStats:
        drift = self.refresh_drift()
        with self._lock:
            latencies = np.fromiter(self._latencies, dtype=float) * 1000.0
            by_class = dict(self._class_counts)
            predictions = self._predictions
            confidence_sum = self._confidence_sum
            errors = dict(self._errors)
            accuracy = self._feedback.accuracy
            labelled = self._feedback.labelled
            window_correct, window_labelled = self._feedback.window_counts
            cache = dict(self._cache)
        if latencies.size:
            p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99]))
            latency = LatencySummary(count=int(latencies.size), p50_ms=p50, p95_ms=p95, p99_ms=p99)
        else:
            latency = LatencySummary(count=0, p50_ms=None, p95_ms=None, p99_ms=None)
        return ServingStats(
            predictions=predictions,
            by_class=by_class,
            mean_confidence=confidence_sum / predictions if predictions else None,
            latency=latency,
            errors=errors,
            rolling_accuracy=accuracy,
            labelled=labelled,
            window_correct=window_correct,
            window_labelled=window_labelled,
            drift=drift,
            cache_hits=cache["hits"],
            cache_misses=cache["misses"],
        )
