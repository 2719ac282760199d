"""What a running service knows about its own traffic: predictions, feedback, latency, drift.

One monitor per (variant, version) in each worker. Prediction paths call
:meth:`ServingMonitor.observe` after a successful prediction only, so rejected requests never
count as predictions. What it observes goes two ways: to this worker's Prometheus families
at once, and through the worker's :class:`PredictionRecorder` to the shared prediction log,
from which ``stats``, drift windows and rolling accuracy are computed, so every worker (and
replica) reports the same figures. Drift is recomputed every ``drift_every`` rows on the
log's newest ``window`` records, off the batch path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from application.monitoring.prediction_recorder import PredictionRecorder
from domain.monitoring.drift import (
    DriftConfig,
    FeatureDrift,
    MissingDrift,
    categorical_drift,
    drifted_share,
    missing_drift,
    numeric_drift,
)
from domain.monitoring.prediction_log import (
    CACHE_HITS,
    CACHE_MISSES,
    CLASS_PREFIX,
    CONFIDENCE_SUM,
    ERROR_PREFIX,
    LABELLED,
    PREDICTIONS,
    LogKey,
    PredictionRecord,
)
from domain.monitoring.profile import CategoricalProfile, ReferenceProfile
from domain.ports import ServingMetrics
from domain.serving.model import DriftValues
from domain.serving.prediction import HexIds
from shared.errors import InvalidInputError

LATENCY_WINDOW = 4096
logger = logging.getLogger(__name__)
PREDICTION_FEATURE = "predicted_class"


ERROR_KINDS = {
    HTTPStatus.BAD_REQUEST: "invalid_input",
    HTTPStatus.UNAUTHORIZED: "unauthenticated",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.REQUEST_TIMEOUT: "client_timeout",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    HTTPStatus.UNPROCESSABLE_ENTITY: "invalid_input",
    HTTPStatus.TOO_MANY_REQUESTS: "overloaded",
    HTTPStatus.SERVICE_UNAVAILABLE: "unavailable",
    HTTPStatus.GATEWAY_TIMEOUT: "timeout",
}


def new_request_ids(count: int) -> list[str]:
    """``count`` time-ordered ids of 32 hex digits: 12 of milliseconds since the epoch, then
    80 random bits (UUIDv7's layout, so the form clients see is unchanged).

    The prediction log's primary key is this id. Random ids put every insert on a random
    page of that index: once the log outgrew SQLite's page cache, each record cost a page
    read and a page written to the WAL (61 us a record in a 530,000-row log, against 21 us
    time-ordered, the same as in an empty log; measured), and the service's CPU per request
    grew with the log's size. Ids that follow the clock land on the index's last pages.
    One read of the OS's random source per batch: ``uuid4()`` per row was about 4% of a
    worker's time under load (profiled); Python 3.11 has no ``uuid7``.
    """
    prefix = _clock_prefix()
    blob = os.urandom(10 * count).hex()
    return [prefix + blob[i : i + 20] for i in range(0, 20 * count, 20)]


def new_request_id_array(count: int) -> HexIds:
    """:func:`new_request_ids` without a Python string per id (offline scoring)."""
    random = np.frombuffer(os.urandom(10 * count).hex().encode("ascii"), dtype="S20")
    digits = np.char.add(np.bytes_(_clock_prefix().encode("ascii")), random)
    return HexIds(digits.astype("S32", copy=False))


def _clock_prefix() -> str:
    return f"{time.time_ns() // 1_000_000:012x}"


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


def compute_drift(
    profile: ReferenceProfile,
    values: DriftValues,
    predicted: Sequence[str],
    config: DriftConfig,
) -> DriftReport:
    """Drift of a window of served rows from the training profile: per feature (on the
    values present), the predicted-class distribution, and each feature's missing rate.
    The service's gauges and ``mlops monitor report`` both compute it here."""
    numeric_values, categorical_values = values
    numeric = {
        name: np.asarray(v, dtype=float)
        for name, v in numeric_values.items()
        if name in profile.numeric
    }
    categorical = {
        name: list(v) for name, v in categorical_values.items() if name in profile.categorical
    }
    gaps = {name: (int(np.isnan(v).sum()), int(v.size)) for name, v in numeric.items()}
    gaps.update({name: (sum(x is None for x in v), len(v)) for name, v in categorical.items()})
    present_numeric = {name: v[~np.isnan(v)] for name, v in numeric.items()}
    present_categorical = {name: [x for x in v if x is not None] for name, v in categorical.items()}
    # A feature scores on the values that arrived; mostly-missing windows are too small to
    # tell (the missing rate itself is compared below).
    features = [
        numeric_drift(name, profile.numeric[name], v, config)
        for name, v in present_numeric.items()
        if v.size >= config.min_window
    ] + [
        categorical_drift(name, profile.categorical[name], v, config)
        for name, v in present_categorical.items()
        if len(v) >= config.min_window
    ]
    prediction = (
        categorical_drift(
            PREDICTION_FEATURE,
            CategoricalProfile(frequencies=profile.class_prior),
            list(predicted),
            config,
        )
        if profile.class_prior
        else None
    )
    missing = [
        missing_drift(name, profile.missing_rate.get(name, 0.0), count, rows, config)
        for name, (count, rows) in gaps.items()
        if rows
    ]
    return DriftReport(
        window=len(predicted),
        features=features,
        drifted_share=drifted_share(features),
        prediction=prediction,
        missing=missing,
    )


class ServingMonitor:
    def __init__(
        self,
        key: LogKey,
        profile: ReferenceProfile,
        classes: Sequence[str],
        metrics: ServingMetrics,
        drift_config: DriftConfig,
        recorder: PredictionRecorder,
        drift_values: Callable[[Sequence[Any]], DriftValues],
        window: int = 500,
        drift_every: int = 50,
        feedback_window: int = 500,
        background: Callable[[Callable[[], object]], object] | None = None,
        drift_min_interval_s: float = 0.0,
    ) -> None:
        """``drift_values`` turns logged inputs into what drift compares (the scorer's);
        ``background`` runs the periodic drift refresh (for example an executor's
        ``submit``); without it the refresh runs inline, in the call that made it due."""
        self.key = key
        self._profile = profile
        self._classes = tuple(classes)
        self.metrics = metrics
        self._drift_config = drift_config
        self._recorder = recorder
        self._log = recorder.log
        self._drift_values = drift_values
        self._window = window
        self._drift_every = drift_every
        self._feedback_window = feedback_window
        self._rows_since_drift = 0
        # Reading the window back from the shared log costs more than the old in-memory
        # deques: at 10 refreshes/s (50 rows each at 500 rps) it took 15% of a core in a
        # soak profile. At most one refresh per interval, however fast rows arrive.
        self._drift_min_interval_s = drift_min_interval_s
        self._refreshed_at = -float("inf")
        self._drift = DriftReport(window=0, features=[], drifted_share=0.0, prediction=None)
        self._background = background
        self._refresh_queued = False
        # Batches run in a worker thread while stats run in another.
        self._lock = threading.Lock()

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    def observe(
        self,
        endpoint: str,
        inputs: Sequence[Any],
        predicted: Sequence[str],
        probabilities: Sequence[dict[str, float]],
        latencies_ms: Sequence[float] | None,
        drift_values: DriftValues,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Record served rows; returns one request id per row for later feedback (new ones
        unless ``ids`` are given: a shadow records the live answer's ids).

        A missing value is NaN in the numeric and None in the categorical drift values:
        counted per feature here (the log keeps the inputs themselves).
        """
        ids = list(ids) if ids is not None else new_request_ids(len(predicted))
        numeric, categorical = drift_values
        missing_counts = {
            name: int(np.isnan(np.asarray(values, dtype=float)).sum())
            for name, values in numeric.items()
        }
        missing_counts.update(
            {name: sum(v is None for v in values) for name, values in categorical.items()}
        )
        confidences = [row[label] for row, label in zip(probabilities, predicted, strict=True)]
        increments: dict[str, float] = {
            CLASS_PREFIX + label: float(count) for label, count in Counter(predicted).items()
        }
        increments[PREDICTIONS] = float(len(predicted))
        increments[CONFIDENCE_SUM] = float(sum(confidences))
        self._recorder.count(self.key, increments)
        now = time.time()
        key, recorder = self.key, self._recorder
        self._recorder.submit(
            [
                PredictionRecord(
                    request_id=ids[i],
                    at=now,
                    model=key.model,
                    version=key.version,
                    variant=key.variant,
                    endpoint=endpoint,
                    inputs=inputs[i],
                    label=predicted[i],
                    probabilities=probabilities[i],
                    latency_ms=latencies_ms[i] if latencies_ms is not None else None,
                )
                for i in range(len(predicted))
                if recorder.sampled()
            ]
        )
        self.metrics.record_predictions(endpoint, predicted, confidences)
        if any(missing_counts.values()):
            self.metrics.record_missing({k: v for k, v in missing_counts.items() if v})
        with self._lock:
            self._rows_since_drift += len(predicted)
            now = time.monotonic()
            # At most one refresh per min interval: one due sooner is deferred to the end
            # of the interval in the background (skipping it left a burst's rows out of the
            # gauges until more traffic came, seen in a test on a fast machine).
            delay = max(0.0, self._refreshed_at + self._drift_min_interval_s - now)
            due = (
                self._rows_since_drift >= self._drift_every
                and not self._refresh_queued
                and (self._background is not None or delay == 0.0)
            )
            if due:
                self._rows_since_drift = 0
                self._refreshed_at = now + delay
                self._refresh_queued = self._background is not None
        if due:
            if self._background is None:
                self.refresh_drift()
            else:
                # Off the batch path: the statistics over the windows took tens of ms every
                # few batches, which the requests of those batches waited out (the tail).
                try:
                    self._background(lambda: self._queued_refresh(delay))
                except RuntimeError:  # the executor is shutting down: refresh here instead
                    self._queued_refresh(0.0)
        return ids

    def _queued_refresh(self, delay_s: float) -> None:
        try:
            if delay_s:
                time.sleep(delay_s)  # the drift executor's own thread: nothing waits on it
            self.refresh_drift()
        except Exception:  # a store hiccup must not stop later refreshes
            logger.exception("drift refresh of %s failed", self.key)
        finally:
            with self._lock:
                self._refresh_queued = False

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        if status >= 400:
            self._recorder.count(self.key, {ERROR_PREFIX + error_kind(status): 1})
        self.metrics.record_request(endpoint, status, seconds)

    def record_cache(self, hits: int, misses: int) -> None:
        self._recorder.count(self.key, {CACHE_HITS: hits, CACHE_MISSES: misses})
        self.metrics.record_cache(hits, misses)

    def check_label(self, actual: str) -> None:
        if actual not in self._classes:
            raise InvalidInputError(
                f"label: unknown class {actual!r}; expected one of {list(self._classes)}",
                field="label",
            )

    def accuracy(self) -> tuple[float | None, int, int]:
        """Rolling accuracy over the key's last ``feedback_window`` labels, all workers':
        (accuracy, correct, labelled in the window)."""
        labelled = self._log.recent_labelled(self.key, self._feedback_window)
        correct = sum(r.actual == r.label for r in labelled)
        return (correct / len(labelled) if labelled else None), correct, len(labelled)

    def refresh_drift(self) -> DriftReport:
        # This worker's newest rows may still be in its buffer: they made the refresh due.
        self._recorder.flush()
        records = self._log.recent(self.key, self._window)
        config = self._drift_config
        if len(records) < config.min_window:
            return self._drift
        report = compute_drift(
            self._profile,
            self._drift_values([r.inputs for r in records]),
            [r.label for r in records],
            config,
        )
        self._drift = report
        self.metrics.set_drift(
            report.features, report.drifted_share, report.prediction, report.window
        )
        self.metrics.set_missing_rates(report.missing)
        return report

    def stats(self) -> ServingStats:
        """Every worker's traffic for this key, from the shared log."""
        drift = self.refresh_drift()
        counts = self._log.counts(self.key)
        latencies = np.asarray(
            [
                r.latency_ms
                for r in self._log.recent(self.key, LATENCY_WINDOW)
                if r.latency_ms is not None
            ],
            dtype=float,
        )
        accuracy, window_correct, window_labelled = self.accuracy()
        predictions = int(counts.get(PREDICTIONS, 0))
        if latencies.size:
            p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99]))
            latency = LatencySummary(count=int(latencies.size), p50_ms=p50, p95_ms=p95, p99_ms=p99)
        else:
            latency = LatencySummary(count=0, p50_ms=None, p95_ms=None, p99_ms=None)
        return ServingStats(
            predictions=predictions,
            by_class={c: int(counts.get(CLASS_PREFIX + c, 0)) for c in self._classes},
            mean_confidence=counts.get(CONFIDENCE_SUM, 0.0) / predictions if predictions else None,
            latency=latency,
            errors={
                name.removeprefix(ERROR_PREFIX): int(value)
                for name, value in counts.items()
                if name.startswith(ERROR_PREFIX)
            },
            rolling_accuracy=accuracy,
            labelled=int(counts.get(LABELLED, 0)),
            window_correct=window_correct,
            window_labelled=window_labelled,
            drift=drift,
            cache_hits=int(counts.get(CACHE_HITS, 0)),
            cache_misses=int(counts.get(CACHE_MISSES, 0)),
        )
