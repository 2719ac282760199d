"""Prometheus families every served model reports, served on BentoML's ``/metrics``.

Labels stay bounded: model name, version and variant (champion, challenger, shadow),
endpoint (the service's API names), class (the model's classes), feature (the model's
features) and error kind (a fixed set).
Families are created on first use, not at import: ``prometheus_client`` picks its
multi-process mode from ``PROMETHEUS_MULTIPROC_DIR``, which BentoML sets before a worker
builds its service.
"""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections import Counter as CountOf
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter, Gauge, Histogram

from application.monitoring.serving_monitor import error_kind
from domain.monitoring.drift import FeatureDrift, MissingDrift

MODEL_LABELS = ("model", "version", "variant")
SERVICE_LABELS = ("model", "variant")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class _Families:
    predictions: Counter
    confidence: Histogram
    latency: Histogram
    errors: Counter
    accuracy: Gauge
    accuracy_labels: Gauge
    drift_window: Gauge
    drift_score: Gauge
    drift_detected: Gauge
    drifted_share: Gauge
    prediction_drift: Gauge
    cache_lookups: Counter
    missing_values: Counter
    missing_rate: Gauge
    missing_reference: Gauge


@cache
def _families() -> _Families:
    # "mostrecent": with several workers the gauge shows the last value any worker wrote.
    return _Families(
        predictions=Counter(
            "mlops_predictions",
            "Predictions served, by predicted class",
            [*MODEL_LABELS, "endpoint", "class"],
        ),
        confidence=Histogram(
            "mlops_prediction_confidence",
            "Probability of the predicted class",
            [*MODEL_LABELS, "class"],
            buckets=CONFIDENCE_BUCKETS,
        ),
        latency=Histogram(
            "mlops_request_latency_seconds",
            "Time from request received to response sent, successful requests",
            [*MODEL_LABELS, "endpoint"],
            buckets=LATENCY_BUCKETS,
        ),
        errors=Counter(
            "mlops_request_errors",
            "Requests answered with an error, by kind",
            [*MODEL_LABELS, "endpoint", "error"],
        ),
        accuracy=Gauge(
            "mlops_rolling_accuracy",
            "Accuracy over the most recent labelled predictions (feedback endpoint)",
            MODEL_LABELS,
            multiprocess_mode="mostrecent",
        ),
        accuracy_labels=Gauge(
            "mlops_rolling_accuracy_labels",
            "Labelled predictions in the rolling accuracy's window",
            MODEL_LABELS,
            multiprocess_mode="mostrecent",
        ),
        drift_window=Gauge(
            "mlops_drift_window_rows",
            "Rows in the window the latest drift report compared with the training profile",
            MODEL_LABELS,
            multiprocess_mode="mostrecent",
        ),
        drift_score=Gauge(
            "mlops_feature_drift_score",
            "Drift score per feature: 1 - p-value for tests, the distance for distances",
            [*MODEL_LABELS, "feature"],
            multiprocess_mode="mostrecent",
        ),
        drift_detected=Gauge(
            "mlops_feature_drift_detected",
            "1 when the feature's recent window drifted from the training reference",
            [*MODEL_LABELS, "feature"],
            multiprocess_mode="mostrecent",
        ),
        drifted_share=Gauge(
            "mlops_drifted_features_share",
            "Share of input features whose recent window drifted",
            MODEL_LABELS,
            multiprocess_mode="mostrecent",
        ),
        prediction_drift=Gauge(
            "mlops_prediction_drift_score",
            "Drift of the predicted-class distribution from the training class prior",
            MODEL_LABELS,
            multiprocess_mode="mostrecent",
        ),
        cache_lookups=Counter(
            "mlops_cache_lookups",
            "Response-cache lookups, one per text, by result (hit or miss)",
            [*MODEL_LABELS, "result"],
        ),
        missing_values=Counter(
            "mlops_feature_missing_values",
            "Values served as missing (null), per feature; the model's imputers filled them",
            [*MODEL_LABELS, "feature"],
        ),
        missing_rate=Gauge(
            "mlops_feature_missing_rate",
            "Share of the recent window's rows that had no value for the feature",
            [*MODEL_LABELS, "feature"],
            multiprocess_mode="mostrecent",
        ),
        missing_reference=Gauge(
            "mlops_feature_missing_reference_rate",
            "Share of training rows that had no value for the feature",
            [*MODEL_LABELS, "feature"],
            multiprocess_mode="mostrecent",
        ),
    )


@dataclass(frozen=True)
class _ServiceFamilies:
    model_info: Gauge
    batch_size: Histogram
    batch_seconds: Histogram
    swaps: Counter
    reload_failures: Counter
    challenger_weight: Gauge
    shadow_agreement: Gauge
    log_records: Counter


@cache
def _service_families() -> _ServiceFamilies:
    return _ServiceFamilies(
        # "liveall": one sample per live worker, so workers serving different versions show,
        # and a killed worker's last versions do not linger.
        model_info=Gauge(
            "mlops_model_info",
            "1 for the version each worker serves per variant (0 once swapped out)",
            [*SERVICE_LABELS, "version", "worker"],
            multiprocess_mode="liveall",
        ),
        batch_size=Histogram(
            "mlops_batch_size",
            "Inputs per model call (micro-batches merge concurrent requests of one variant)",
            SERVICE_LABELS,
            buckets=BATCH_BUCKETS,
        ),
        # Its sum over wall time is the share of time the model was busy: what a closed-loop
        # client's throughput is capped by, next to the batch size.
        batch_seconds=Histogram(
            "mlops_batch_seconds",
            "Seconds per model call (one micro-batch, input preparation included)",
            SERVICE_LABELS,
            buckets=LATENCY_BUCKETS,
        ),
        swaps=Counter(
            "mlops_model_swaps",
            "Versions swapped in (or removed) by the alias reloader",
            [*SERVICE_LABELS, "outcome"],
        ),
        reload_failures=Counter(
            "mlops_model_reload_failures",
            "New versions that failed to load or check; the old version kept serving",
            SERVICE_LABELS,
        ),
        challenger_weight=Gauge(
            "mlops_challenger_weight",
            "Percent of live traffic routed to the challenger",
            ["model"],
            multiprocess_mode="mostrecent",
        ),
        shadow_agreement=Gauge(
            "mlops_shadow_agreement",
            "Share of shadow predictions that agree with the live answer",
            ["model"],
            multiprocess_mode="mostrecent",
        ),
        log_records=Counter(
            "mlops_prediction_log_records",
            "Prediction records written to the shared log, or dropped (buffer full, store down)",
            ["model", "outcome"],
        ),
    )


class PrometheusServiceMetrics:
    """Service-level families: which versions serve, batches, swaps, traffic, shadow."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._families = _service_families()
        self._worker = str(os.getpid())

    def start_counters(self, variants: Sequence[str]) -> None:
        """Counters of rare events exist at 0 from the start, so rate() and increase() see
        the first one (a series that appears at 1 would go unnoticed) and dashboards show 0."""
        families = self._families
        for variant in variants:
            families.reload_failures.labels(self._model, variant).inc(0)
        for outcome in ("written", "dropped"):
            families.log_records.labels(self._model, outcome).inc(0)

    def model_info(self, variant: str, version: str | None, previous: str | None) -> None:
        info = self._families.model_info
        if previous is not None and previous != version:
            info.labels(self._model, variant, previous, self._worker).set(0)
        if version is not None:
            info.labels(self._model, variant, version, self._worker).set(1)

    def batch(self, variant: str, size: int, seconds: float) -> None:
        self._families.batch_size.labels(self._model, variant).observe(size)
        self._families.batch_seconds.labels(self._model, variant).observe(seconds)

    def swapped(self, variant: str, outcome: str) -> None:
        self._families.swaps.labels(self._model, variant, outcome).inc()

    def reload_failed(self, variant: str) -> None:
        self._families.reload_failures.labels(self._model, variant).inc()

    def challenger_weight(self, weight: float) -> None:
        self._families.challenger_weight.labels(self._model).set(weight)

    def shadow_agreement(self, agreement: float) -> None:
        self._families.shadow_agreement.labels(self._model).set(agreement)

    def log_written(self, records: int) -> None:
        self._families.log_records.labels(self._model, "written").inc(records)

    def log_dropped(self, records: int) -> None:
        self._families.log_records.labels(self._model, "dropped").inc(records)


def observe_all(histogram: Histogram, amounts: Sequence[float]) -> None:
    """``histogram.observe`` for each amount, in one write per bucket touched and one to the
    sum.

    Why not ``observe`` in a loop: in multi-process mode each call takes a lock and writes
    two values into the worker's mmap file, and a request's latency and a batch's
    confidences were 4-6% of a worker's CPU under load (py-spy, ``make bench-overhead``).
    prometheus_client has no bulk observe, so this reaches into the child's
    ``_upper_bounds``, ``_buckets`` and ``_sum`` (the ones ``observe`` writes);
    ``test_observe_all_writes_what_observe_writes`` fails if an upgrade changes them.
    """
    if not amounts:
        return
    bounds = histogram._upper_bounds
    histogram._sum.inc(sum(amounts))
    for index, count in CountOf(bisect_left(bounds, amount) for amount in amounts).items():
        histogram._buckets[index].inc(count)


class DeferredWrites(ABC):
    """Metric writes gathered on the event loop that makes them and done at most every
    ``write_every_s`` (at once when no loop runs, since nothing would do them later).
    Called from one thread (the worker's event loop); subclasses say what ``_write`` does.
    """

    def __init__(self, write_every_s: float) -> None:
        self._write_every_s = write_every_s
        self._write_pending = False

    def _schedule(self) -> None:
        if self._write_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write()
            return
        self._write_pending = True
        loop.call_later(self._write_every_s, self.write)

    def write(self) -> None:
        self._write_pending = False
        self._write()

    @abstractmethod
    def _write(self) -> None:
        """Makes the writes gathered since the last one."""


class DeferredHistogram(DeferredWrites):
    """A histogram child whose observations are written together (see :func:`observe_all`);
    a Prometheus scrape reads them up to ``write_every_s`` late."""

    def __init__(self, histogram: Histogram, write_every_s: float = 0.05) -> None:
        super().__init__(write_every_s)
        self._histogram = histogram
        self._pending: list[float] = []

    def observe(self, amount: float) -> None:
        self._pending.append(amount)
        self._schedule()

    def _write(self) -> None:
        pending, self._pending = self._pending, []
        observe_all(self._histogram, pending)


class PrometheusServingMetrics:
    """The :class:`domain.ports.ServingMetrics` port, bound to one variant's model version."""

    def __init__(self, model: str, version: str, variant: str, endpoints: Sequence[str]) -> None:
        self._model = model
        self._version = version
        self._variant = variant
        self._endpoints = frozenset(endpoints)
        self._families = _families()
        # The per-request series' children, by their varying labels: prometheus_client
        # checks and joins every label on each ``labels()`` call, which was a few percent
        # of the service's CPU per request. The model, version and variant never change
        # for this object, so the set stays as small as endpoints x classes.
        self._latency: dict[str, DeferredHistogram] = {}
        self._confidence: dict[str, Histogram] = {}
        self._predicted: dict[tuple[str, str], Counter] = {}

    def _endpoint(self, endpoint: str) -> str:
        return endpoint if endpoint in self._endpoints else "other"

    def record_predictions(
        self, endpoint: str, predicted: Sequence[str], confidences: Sequence[float]
    ) -> None:
        families, model, version, variant = (
            self._families,
            self._model,
            self._version,
            self._variant,
        )
        endpoint = self._endpoint(endpoint)
        for label, count in CountOf(predicted).items():
            counter = self._predicted.get((endpoint, label))
            if counter is None:
                counter = families.predictions.labels(model, version, variant, endpoint, label)
                self._predicted[endpoint, label] = counter
            counter.inc(count)
        by_label: dict[str, list[float]] = {}
        for label, confidence in zip(predicted, confidences, strict=True):
            by_label.setdefault(label, []).append(confidence)
        for label, label_confidences in by_label.items():
            histogram = self._confidence.get(label)
            if histogram is None:
                histogram = families.confidence.labels(model, version, variant, label)
                self._confidence[label] = histogram
            observe_all(histogram, label_confidences)

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        endpoint = self._endpoint(endpoint)
        if status < 400:
            latency = self._latency.get(endpoint)
            if latency is None:
                latency = DeferredHistogram(
                    self._families.latency.labels(
                        self._model, self._version, self._variant, endpoint
                    )
                )
                self._latency[endpoint] = latency
            latency.observe(seconds)
        else:
            self._families.errors.labels(
                self._model, self._version, self._variant, endpoint, error_kind(status)
            ).inc()

    def set_accuracy(self, accuracy: float, labels: int) -> None:
        families = self._families
        families.accuracy.labels(self._model, self._version, self._variant).set(accuracy)
        families.accuracy_labels.labels(self._model, self._version, self._variant).set(labels)

    def set_drift(
        self,
        features: Sequence[FeatureDrift],
        drifted_share: float,
        prediction: FeatureDrift | None,
        window: int,
    ) -> None:
        families, model, version, variant = (
            self._families,
            self._model,
            self._version,
            self._variant,
        )
        for result in features:
            families.drift_score.labels(model, version, variant, result.feature).set(result.score)
            families.drift_detected.labels(model, version, variant, result.feature).set(
                float(result.drifted)
            )
        families.drifted_share.labels(model, version, variant).set(drifted_share)
        families.drift_window.labels(model, version, variant).set(window)
        if prediction is not None:
            families.prediction_drift.labels(model, version, variant).set(prediction.score)

    def record_cache(self, hits: int, misses: int) -> None:
        lookups = self._families.cache_lookups
        if hits:
            lookups.labels(self._model, self._version, self._variant, "hit").inc(hits)
        if misses:
            lookups.labels(self._model, self._version, self._variant, "miss").inc(misses)

    def record_missing(self, counts: Mapping[str, int]) -> None:
        for feature, count in counts.items():
            self._families.missing_values.labels(
                self._model, self._version, self._variant, feature
            ).inc(count)

    def set_missing_rates(self, missing: Sequence[MissingDrift]) -> None:
        families, model, version, variant = (
            self._families,
            self._model,
            self._version,
            self._variant,
        )
        for result in missing:
            families.missing_rate.labels(model, version, variant, result.feature).set(result.rate)
            families.missing_reference.labels(model, version, variant, result.feature).set(
                result.reference_rate
            )


@cache
def _in_flight_family() -> Gauge:
    # "livesum": the pod's total over its live workers, what its HPA scales on.
    return Gauge(
        "mlops_requests_in_flight",
        "API requests received and not yet answered, per service and endpoint",
        ["service", "endpoint"],
        multiprocess_mode="livesum",
    )


@cache
def _in_flight_limit_family() -> Gauge:
    # "livesum", as the in-flight count: the pod's ceiling is its live workers' together.
    return Gauge(
        "mlops_in_flight_limit",
        "Requests a service's workers take in at once before 429: MAX_CONCURRENCY, or each "
        "worker's measured answers per second x MAX_LATENCY_MS when higher",
        ["service"],
        multiprocess_mode="livesum",
    )


class PrometheusInFlightLimit:
    """``mlops_in_flight_limit``, set by the request guard's limit when it moves (at most
    once a second), so an operator who sees 429s sees the ceiling they came from."""

    def __init__(self, service: str) -> None:
        self._series = _in_flight_limit_family().labels(service)

    def __call__(self, limit: int) -> None:
        self._series.set(limit)


class PrometheusRequestsInFlight(DeferredWrites):
    """``mlops_requests_in_flight``, kept by the request guard.

    It stands in for BentoML's ``bentoml_service_request_in_progress``, whose middleware
    (off unless ``REQUEST_METRICS``) looks up six labelled series per request: about 100 us
    of a worker's CPU per request in ``make bench-overhead``.

    Why the count is written at most every ``write_every_s`` rather than on each change: in
    multi-process mode every write takes a lock and packs into the worker's mmap file, and
    the two writes per request were a twentieth of the worker's CPU under load (py-spy,
    ``make bench-overhead``). A gauge is a point in time that Prometheus reads every few
    seconds, so being up to ``write_every_s`` late changes no scrape that matters (the
    HPA's, which averages over its window). A series is written at once the first time it
    is seen, and whenever no event loop runs (nothing would flush it later).
    """

    def __init__(self, service: str, write_every_s: float = 0.05) -> None:
        super().__init__(write_every_s)
        self._service = service
        self._series: dict[str, Gauge] = {}
        self._counts: dict[str, int] = {}
        self._written: dict[str, int] = {}

    def add(self, endpoint: str, change: int) -> None:
        self._counts[endpoint] = self._counts.get(endpoint, 0) + change
        if endpoint not in self._series:
            self._series[endpoint] = _in_flight_family().labels(self._service, endpoint)
            self.write()
            return
        self._schedule()

    def _write(self) -> None:
        """Writes every count that changed since the last write."""
        for endpoint, count in self._counts.items():
            if self._written.get(endpoint) != count:
                self._series[endpoint].set(count)
                self._written[endpoint] = count
