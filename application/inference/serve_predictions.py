"""The prediction use case every service (and batch job) shares: route -> predict -> observe.

A request's key picks its live variant (sticky, :class:`TrafficSplit`); requests of one
variant are scored together in micro-batches by the version the pool holds when the batch
starts; each answer names that variant and version; the shadow variant scores a copy of
every live batch in its own thread, dropped rather than queued when it falls behind, so it
never delays a live answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from application.inference.batching import MicroBatcher
from application.inference.model_pool import ModelPool
from application.monitoring.serving_monitor import new_request_id_array, new_request_ids
from application.monitoring.variant_monitors import VariantMonitors
from domain.serving.model import LoadedModel
from domain.serving.prediction import Prediction, ScoredBatch
from domain.serving.variants import CHALLENGER, CHAMPION, SHADOW, TrafficSplit, VariantName

logger = logging.getLogger(__name__)

Item = tuple[str, Any, float]  # (endpoint, validated input, monotonic time it was queued)


class PredictionService:
    def __init__(
        self,
        pool: ModelPool,
        split: TrafficSplit,
        monitors: VariantMonitors | None,
        executor: Executor,
        shadow_executor: Executor,
        max_batch_size: int,
        shadow_max_pending: int = 1024,
        shadow_timeout_s: float = 5.0,
        on_batch: Callable[[str, int, float], None] | None = None,
        max_wait_s: float | None = None,
        linger: float = 0.0,
    ) -> None:
        self.pool = pool
        self.split = split
        self.monitors = monitors
        self._shadow_executor = shadow_executor
        self._shadow_max_pending = shadow_max_pending
        self._shadow_timeout_s = shadow_timeout_s
        self._shadow_pending = 0
        self._shadow_lock = threading.Lock()
        self._batchers: dict[VariantName, MicroBatcher[Item, Prediction]] = {
            variant: MicroBatcher(
                lambda items, variant=variant: self._run(variant, items),  # type: ignore[misc]
                max_batch_size,
                executor,
                on_batch=(lambda size, seconds, variant=variant: on_batch(variant, size, seconds))  # type: ignore[misc]
                if on_batch
                else None,
                max_wait_s=max_wait_s,
                linger=linger,
            )
            for variant in (CHAMPION, CHALLENGER)
        }

    def route(self, key: str | None) -> VariantName:
        """The live variant for a request key; the champion while no challenger is loaded."""
        variant = self.split.route(key)
        return variant if self.pool.get(variant) is not None else CHAMPION

    async def predict(
        self, endpoint: str, inputs: Sequence[Any], key: str | None
    ) -> list[Prediction]:
        """Score validated inputs of one request on the event loop (batched with others)."""
        variant = self.route(key)
        queued = time.monotonic()
        return await self._batchers[variant].submit([(endpoint, value, queued) for value in inputs])

    def score_batch(
        self, endpoint: str, inputs: Sequence[Any], variant: VariantName = CHAMPION
    ) -> ScoredBatch:
        """The same path, answers as columns: offline scoring of files, where an object
        per row cost more than the model (profiled on a tabular model).

        Without monitors (``mlops score``) nothing is recorded per row, so the inputs go to
        the model as the caller holds them (a file's columns) and no per-row item is built.
        """
        if self.monitors is not None:
            queued = time.monotonic()
            items = [(endpoint, value, queued) for value in inputs]
            batch, _ = self._score(variant, items, False)
            return batch
        variant, model = self._model_for(variant)
        probabilities = model.scorer.predict_proba(inputs)
        label_ids = probabilities.argmax(axis=1)
        labels = _labels(model.scorer.classes, label_ids)
        ids = new_request_id_array(len(labels))
        return self._batch(variant, model, ids, labels, label_ids, probabilities)

    def queued(self, variant: VariantName) -> int:
        batcher = self._batchers.get(variant)
        return batcher.waiting if batcher else 0

    def _run(self, variant: VariantName, items: list[Item]) -> list[Prediction]:
        batch, rows = self._score(variant, items, True)
        assert rows is not None
        # model_construct: every field is built here from the model's own output, so
        # validating each one again only cost time per row (profiled).
        predictions = [
            Prediction.model_construct(
                request_id=request_id,
                label=label,
                label_id=int(index),
                probability=row[label],
                probabilities=row,
                model_version=batch.model_version,
                variant=batch.variant,
            )
            for request_id, label, index, row in zip(
                batch.request_ids, batch.labels, batch.label_ids, rows, strict=True
            )
        ]
        self._send_to_shadow(items, batch.labels, batch.request_ids)
        return predictions

    def _score(
        self, variant: VariantName, items: list[Item], with_rows: bool
    ) -> tuple[ScoredBatch, list[dict[str, float]] | None]:
        """Scores and observes a batch; with ``rows`` (or monitors), each answer's
        class -> probability mapping too."""
        variant, model = self._model_for(variant)
        inputs = [value for _, value, _ in items]
        probabilities = model.scorer.predict_proba(inputs)
        done = time.monotonic()
        latencies = [(done - queued) * 1000.0 for _, _, queued in items]
        rows = (
            _probability_rows(model.scorer.classes, probabilities)
            if with_rows or self.monitors is not None
            else None
        )
        label_ids = probabilities.argmax(axis=1)
        labels, ids = self._observe(variant, model, items, rows, probabilities, latencies, None)
        return self._batch(variant, model, ids, labels, label_ids, probabilities), rows

    def _model_for(self, variant: VariantName) -> tuple[VariantName, LoadedModel]:
        model = self.pool.get(variant)
        if model is None:  # the challenger was removed while this batch waited
            return CHAMPION, self.pool.champion()
        return variant, model

    @staticmethod
    def _batch(
        variant: VariantName,
        model: LoadedModel,
        ids: Sequence[str],
        labels: list[str],
        label_ids: np.ndarray,
        probabilities: np.ndarray,
    ) -> ScoredBatch:
        return ScoredBatch(
            variant=variant,
            model_version=model.version,
            classes=tuple(model.scorer.classes),
            request_ids=ids,
            labels=labels,
            label_ids=label_ids,
            probabilities=probabilities,
        )

    def _observe(
        self,
        variant: VariantName,
        model: LoadedModel,
        items: list[Item],
        rows: list[dict[str, float]] | None,
        probabilities: np.ndarray,
        latencies_ms: list[float] | None,
        given_ids: Sequence[str] | None,
    ) -> tuple[list[str], list[str]]:
        """Record the batch with the variant's monitor, one call per endpoint in it (without
        monitors, as for offline scoring, the answers get ids and nothing is recorded)."""
        labels = _labels(model.scorer.classes, probabilities.argmax(axis=1))
        if self.monitors is None:
            return labels, list(given_ids) if given_ids is not None else new_request_ids(len(items))
        assert rows is not None, "monitors record each answer's probabilities"
        monitor = self.monitors.monitor_for(variant, model)
        inputs = [value for _, value, _ in items]
        numeric, categorical = model.scorer.drift_values(inputs)
        ids = [""] * len(items)
        endpoints = sorted({endpoint for endpoint, _, _ in items})
        for endpoint in endpoints:
            whole = len(endpoints) == 1
            index = (
                list(range(len(items)))
                if whole
                else [i for i, (name, _, _) in enumerate(items) if name == endpoint]
            )
            recorded = monitor.observe(
                endpoint,
                inputs if whole else [inputs[i] for i in index],
                labels if whole else [labels[i] for i in index],
                rows if whole else [rows[i] for i in index],
                None
                if latencies_ms is None
                else (latencies_ms if whole else [latencies_ms[i] for i in index]),
                (
                    numeric if whole else {k: np.asarray(v)[index] for k, v in numeric.items()},
                    categorical
                    if whole
                    else {k: [v[i] for i in index] for k, v in categorical.items()},
                ),
                ids=[given_ids[i] for i in index] if given_ids is not None else None,
            )
            for position, request_id in zip(index, recorded, strict=True):
                ids[position] = request_id
        return labels, ids

    def _send_to_shadow(self, items: list[Item], live: list[str], ids: Sequence[str]) -> None:
        shadow = self.pool.get(SHADOW)
        if shadow is None or self.monitors is None:
            return
        with self._shadow_lock:
            if self._shadow_pending + len(items) > self._shadow_max_pending:
                self.monitors.record_shadow(0, 0, dropped=len(items))
                return
            self._shadow_pending += len(items)
        submitted = time.monotonic()
        self._shadow_executor.submit(
            self._score_shadow, self.monitors, shadow, items, live, ids, submitted
        )

    def _score_shadow(
        self,
        monitors: VariantMonitors,
        shadow: LoadedModel,
        items: list[Item],
        live: list[str],
        ids: Sequence[str],
        submitted: float,
    ) -> None:
        try:
            if time.monotonic() - submitted > self._shadow_timeout_s:
                monitors.record_shadow(0, 0, dropped=len(items))
                return
            shadow_items = [("shadow", value, queued) for _, value, queued in items]
            probabilities = shadow.scorer.predict_proba([value for _, value, _ in items])
            rows = _probability_rows(shadow.scorer.classes, probabilities)
            labels, _ = self._observe(SHADOW, shadow, shadow_items, rows, probabilities, None, ids)
            agreed = sum(a == b for a, b in zip(labels, live, strict=True))
            monitors.record_shadow(len(items), agreed)
        except Exception:  # a broken shadow must never reach live traffic
            logger.exception("shadow %s failed on a batch of %d", shadow.tag, len(items))
            monitors.record_shadow(0, 0, failed=len(items))
        finally:
            with self._shadow_lock:
                self._shadow_pending -= len(items)


def _labels(classes: Sequence[str], label_ids: np.ndarray) -> list[str]:
    labels: list[str] = np.asarray(classes, dtype=object)[label_ids].tolist()
    return labels


def _probability_rows(classes: Sequence[str], probabilities: np.ndarray) -> list[dict[str, float]]:
    """Per row, class -> probability: the answer's field and the log record's, built once."""
    return [dict(zip(classes, row, strict=True)) for row in probabilities.tolist()]
