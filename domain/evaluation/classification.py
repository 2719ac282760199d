"""Classification metrics computed with numpy alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict


class ClassMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    precision: float
    recall: float
    f1: float
    support: int


class ClassificationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    labels: tuple[str, ...]
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    weighted_precision: float
    weighted_recall: float
    weighted_f1: float
    per_class: dict[str, ClassMetrics]
    # confusion_matrix[i][j]: true label i predicted as label j.
    confusion_matrix: tuple[tuple[int, ...], ...]
    samples: int

    def metrics(self) -> dict[str, float]:
        """Flat metric names as logged to the tracker and compared by gates."""
        return {
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "weighted_precision": self.weighted_precision,
            "weighted_recall": self.weighted_recall,
            "weighted_f1": self.weighted_f1,
        }


# The registered model's held-out metrics live on its training run under this prefix. Every
# trainer writes them with `held_out_metric_keys` and every reader (registry, `mlops models`)
# reads them with `held_out_metrics`, so no caller spells a metric key itself.
HELD_OUT_PREFIX = "best."


def held_out_metric_keys(report: ClassificationReport) -> dict[str, float]:
    """The run metrics a trainer logs for the model it registers."""
    return {f"{HELD_OUT_PREFIX}{name}": value for name, value in report.metrics().items()}


def held_out_metrics(run_metrics: Mapping[str, float]) -> dict[str, float]:
    """The registered model's held-out metrics, by plain name, from its run's metrics."""
    return {
        key.removeprefix(HELD_OUT_PREFIX): float(value)
        for key, value in run_metrics.items()
        if key.startswith(HELD_OUT_PREFIX)
    }


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def classification_report(
    y_true: Iterable[object], y_pred: Iterable[object], labels: Sequence[str] | None = None
) -> ClassificationReport:
    truth = np.asarray([str(v) for v in y_true])
    predicted = np.asarray([str(v) for v in y_pred])
    if truth.shape != predicted.shape:
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if truth.size == 0:
        raise ValueError("cannot evaluate on zero samples")
    names = list(labels) if labels is not None else sorted(set(truth) | set(predicted))
    index = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        if t in index and p in index:
            matrix[index[t], index[p]] += 1
    true_positive = np.diag(matrix).astype(float)
    predicted_count = matrix.sum(axis=0).astype(float)
    support = matrix.sum(axis=1).astype(float)
    precision = _safe_divide(true_positive, predicted_count)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    weights = support / support.sum() if support.sum() else np.zeros_like(support)
    return ClassificationReport(
        labels=tuple(names),
        accuracy=float(np.mean(truth == predicted)),
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
        weighted_precision=float((precision * weights).sum()),
        weighted_recall=float((recall * weights).sum()),
        weighted_f1=float((f1 * weights).sum()),
        per_class={
            name: ClassMetrics(
                precision=float(precision[i]),
                recall=float(recall[i]),
                f1=float(f1[i]),
                support=int(support[i]),
            )
            for i, name in enumerate(names)
        },
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in matrix),
        samples=int(truth.size),
    )
