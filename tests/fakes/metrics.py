"""A ServingMetrics port that records what it was told, for assertions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.monitoring.drift import FeatureDrift, MissingDrift


class RecordingMetrics:
    def __init__(self) -> None:
        self.predictions: list[tuple[str, list[str]]] = []
        self.requests: list[tuple[str, int]] = []
        self.accuracy: float | None = None
        self.accuracy_labels = 0
        self.drift_window = 0
        self.drift: tuple[list[FeatureDrift], float, FeatureDrift | None] | None = None
        self.cache: list[tuple[int, int]] = []
        self.missing: dict[str, int] = {}
        self.missing_rates: dict[str, float] = {}

    def record_predictions(
        self, endpoint: str, predicted: Sequence[str], confidences: Sequence[float]
    ) -> None:
        self.predictions.append((endpoint, list(predicted)))

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.append((endpoint, status))

    def set_accuracy(self, accuracy: float, labels: int) -> None:
        self.accuracy = accuracy
        self.accuracy_labels = labels

    def set_drift(
        self,
        features: Sequence[FeatureDrift],
        drifted_share: float,
        prediction: FeatureDrift | None,
        window: int,
    ) -> None:
        self.drift = (list(features), drifted_share, prediction)
        self.drift_window = window

    def record_cache(self, hits: int, misses: int) -> None:
        self.cache.append((hits, misses))

    def record_missing(self, counts: Mapping[str, int]) -> None:
        for feature, count in counts.items():
            self.missing[feature] = self.missing.get(feature, 0) + count

    def set_missing_rates(self, missing: Sequence[MissingDrift]) -> None:
        self.missing_rates = {result.feature: result.rate for result in missing}
