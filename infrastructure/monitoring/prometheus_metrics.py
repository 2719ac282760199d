"""Prometheus families every served model reports, served on BentoML's ``/metrics``.

Labels stay bounded: model name and version, endpoint (the service's API names), class
(the model's classes), feature (the model's features) and error kind (a fixed set).
Families are created on first use, not at import: ``prometheus_client`` picks its
multi-process mode from ``PROMETHEUS_MULTIPROC_DIR``, which BentoML sets before a worker
builds its service.
"""

from __future__ import annotations

from collections import Counter as CountOf
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter, Gauge, Histogram

from application.monitoring.serving_monitor import error_kind
from domain.monitoring.drift import FeatureDrift, MissingDrift

MODEL_LABELS = ("model", "version")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class _Families:
    predictions: Counter
    confidence: Histogram
    latency: Histogram
    errors: Counter
    accuracy: Gauge
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


class PrometheusServingMetrics:
    """The :class:`domain.ports.ServingMetrics` port, bound to one model version."""

    def __init__(self, model: str, version: str, endpoints: Sequence[str]) -> None:
        self._model = model
        self._version = version
        self._endpoints = frozenset(endpoints)
        self._families = _families()

    def _endpoint(self, endpoint: str) -> str:
        return endpoint if endpoint in self._endpoints else "other"

    def record_predictions(
        self, endpoint: str, predicted: Sequence[str], confidences: Sequence[float]
    ) -> None:
        families, model, version = self._families, self._model, self._version
        endpoint = self._endpoint(endpoint)
        for label, count in CountOf(predicted).items():
            families.predictions.labels(model, version, endpoint, label).inc(count)
        for label, confidence in zip(predicted, confidences, strict=True):
            families.confidence.labels(model, version, label).observe(confidence)

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        endpoint = self._endpoint(endpoint)
        if status < 400:
            self._families.latency.labels(self._model, self._version, endpoint).observe(seconds)
        else:
            self._families.errors.labels(
                self._model, self._version, endpoint, error_kind(status)
            ).inc()

    def set_accuracy(self, accuracy: float) -> None:
        self._families.accuracy.labels(self._model, self._version).set(accuracy)

    def set_drift(
        self,
        features: Sequence[FeatureDrift],
        drifted_share: float,
        prediction: FeatureDrift | None,
    ) -> None:
        families, model, version = self._families, self._model, self._version
        for result in features:
            families.drift_score.labels(model, version, result.feature).set(result.score)
            families.drift_detected.labels(model, version, result.feature).set(
                float(result.drifted)
            )
        families.drifted_share.labels(model, version).set(drifted_share)
        if prediction is not None:
            families.prediction_drift.labels(model, version).set(prediction.score)

    def record_cache(self, hits: int, misses: int) -> None:
        lookups = self._families.cache_lookups
        if hits:
            lookups.labels(self._model, self._version, "hit").inc(hits)
        if misses:
            lookups.labels(self._model, self._version, "miss").inc(misses)

    def record_missing(self, counts: Mapping[str, int]) -> None:
        for feature, count in counts.items():
            self._families.missing_values.labels(self._model, self._version, feature).inc(count)

    def set_missing_rates(self, missing: Sequence[MissingDrift]) -> None:
        families, model, version = self._families, self._model, self._version
        for result in missing:
            families.missing_rate.labels(model, version, result.feature).set(result.rate)
            families.missing_reference.labels(model, version, result.feature).set(
                result.reference_rate
            )
