"""Rolling accuracy from ground truth that arrives after the prediction."""

from __future__ import annotations

from collections import OrderedDict, deque


class RollingAccuracy:
    """Remembers recent predictions by request id; scores the last ``window`` labelled ones."""

    def __init__(self, window: int = 500, remembered: int = 10_000) -> None:
        if window < 1 or remembered < 1:
            raise ValueError("window and remembered must be positive")
        self._predictions: OrderedDict[str, str] = OrderedDict()
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._remembered = remembered
        self.labelled = 0

    def record_prediction(self, request_id: str, predicted: str) -> None:
        self._predictions[request_id] = predicted
        self._predictions.move_to_end(request_id)
        while len(self._predictions) > self._remembered:
            self._predictions.popitem(last=False)

    def knows(self, request_id: str) -> bool:
        return request_id in self._predictions

    def peek(self, request_id: str) -> str:
        """The prediction awaiting feedback under ``request_id``; KeyError if none."""
        return self._predictions[request_id]

    def record_truth(self, request_id: str, actual: str) -> bool:
        """Returns whether the prediction was correct; KeyError if the id is unknown or used."""
        predicted = self._predictions.pop(request_id)
        correct = predicted == actual
        self._outcomes.append(correct)
        self.labelled += 1
        return correct

    @property
    def accuracy(self) -> float | None:
        return sum(self._outcomes) / len(self._outcomes) if self._outcomes else None

    @property
    def window_counts(self) -> tuple[int, int]:
        """(correct, labelled) over the scored window: what a test of accuracy needs."""
        return sum(self._outcomes), len(self._outcomes)
