"""The text Bento service: a fine-tuned sequence classifier from the BentoML store.

Built from :class:`TextServingSettings` when the entry module
(``infrastructure/serving/entrypoints/text.py``) is imported. ``classify`` is the
adaptively batched path: BentoML merges concurrent requests' texts into one batch, scored in
length-sorted forward passes each padded to its own longest text (see ``forward_plan``).
The model runs on CUDA when torch sees one.
Annotations are evaluated eagerly (no ``__future__`` import): BentoML reads them to build
the API schemas, and they name types built from the settings.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import torch
from pydantic import BaseModel

from application.inference.prediction_cache import PredictionCache
from application.monitoring.serving_monitor import FeedbackOutcome, ServingMonitor, ServingStats
from domain.data.text import TEXT_LENGTH_FEATURE
from infrastructure.config.settings import TextServingSettings
from infrastructure.ml.text.classifier import TransformersTextClassifier
from infrastructure.serving.client_error_logging import quiet_client_errors
from infrastructure.serving.service_blueprint import (
    ENDPOINTS,
    JsonResponse,
    RequestId,
    ServiceBlueprint,
    ServiceState,
    class_label,
    endpoint_errors,
    guard_middleware,
    record_feedback,
    service_config,
    serving_limits,
    serving_monitor,
)
from infrastructure.serving.stored_model import ServedModel, resolve_served_model
from infrastructure.serving.text_request import TextsBody, build_text_request_types
from infrastructure.serving.warmup import Warmup
from shared.errors import ModelNotFoundError

# Measured on 2 CPU cores over SST-2 sentences (README, "Serve (text)"): length-sorted passes
# of at most 256 padded tokens served 277-355 texts/s at batch 64, passes of 8 texts 220-306
# and one pass of 64 texts 130; budgets of 96-128 tokens lost at batch 64, 1024+ at every size.
CPU_FORWARD_TOKENS = 256

# Warm-up batches are padded to the model's max length: the most expensive shape it serves.
WARMUP_SENTENCE = "a warm , funny and thoroughly engaging film that never loses its way . "


@dataclass(frozen=True)
class ForwardPlan:
    """How a batch is cut into forward passes: texts per pass, padded tokens per pass (0: any)."""

    max_texts: int
    max_tokens: int


class TextPrediction(BaseModel):
    request_id: str
    label: str
    label_id: int
    probability: float
    probabilities: dict[str, float]


class TextPredictResponse(BaseModel):
    model_name: str
    model_version: str
    base_model: str
    latency_ms: float
    predictions: list[TextPrediction]


class TextPredictor:
    """Scores normalized texts, through the response cache when there is one. One per worker."""

    def __init__(
        self,
        classifier: TransformersTextClassifier,
        model_version: str,
        forward: ForwardPlan,
        monitor: ServingMonitor,
        cache: PredictionCache[np.ndarray] | None = None,
    ) -> None:
        self.classifier = classifier
        self.classes = classifier.classes
        self._version = model_version
        self.forward = forward
        self._monitor = monitor
        self._cache = cache

    def probabilities(self, texts: list[str]) -> np.ndarray:
        if self._cache is None:
            return self._score(texts)
        keys = [(self._version, text) for text in texts]
        lookup = self._cache.lookup(keys)
        scores = np.empty((len(texts), len(self.classes)))
        for position, row in lookup.hits.items():
            scores[position] = row
        if lookup.misses:
            computed = self._score([texts[i] for i in lookup.misses])
            scores[lookup.misses] = computed
            # Copies: a view would keep the whole batch's array alive in the cache.
            self._cache.store([(keys[i], computed[j].copy()) for j, i in enumerate(lookup.misses)])
        self._monitor.record_cache(len(lookup.hits), len(lookup.misses))
        return scores

    def _score(self, texts: list[str]) -> np.ndarray:
        return self.classifier.predict_proba(
            texts, batch_size=self.forward.max_texts, max_tokens=self.forward.max_tokens
        )

    def serve(self, endpoint: str, texts: list[str]) -> list[TextPrediction]:
        scores = self.probabilities(texts)
        best = scores.argmax(axis=1)
        predicted = [self.classes[i] for i in best]
        lengths = np.fromiter((len(text) for text in texts), dtype=float, count=len(texts))
        ids = self._monitor.observe(
            endpoint,
            {TEXT_LENGTH_FEATURE: lengths},
            {},
            predicted,
            scores[np.arange(len(best)), best],
        )
        return [
            TextPrediction(
                request_id=request_id,
                label=self.classes[index],
                label_id=int(index),
                probability=float(row[index]),
                probabilities=dict(zip(self.classes, map(float, row), strict=True)),
            )
            for request_id, index, row in zip(ids, best, scores, strict=True)
        ]

    def warm(self, batch_size: int, max_length: int) -> None:
        text = (WARMUP_SENTENCE * (max_length // 8 + 1)).strip()
        self._score([text] * batch_size)


def forward_plan(settings: TextServingSettings, device: str) -> ForwardPlan:
    """The setting's token budget, else small length-sorted passes on CPU, whole batches on GPU.

    On CPU, cost grows with the padded tokens a pass computes, and short passes of texts of
    similar length pad least; a GPU runs a large pass in about the time of a small one.
    """
    tokens = settings.forward_max_tokens
    if not tokens and device == "cpu":
        tokens = CPU_FORWARD_TOKENS
    return ForwardPlan(max(settings.max_batch_size, settings.max_instances), tokens)


def build_text_service(settings: TextServingSettings) -> ServiceBlueprint:
    served = resolve_served_model(settings)
    contract = served.contract
    if contract.max_length is None:
        raise ModelNotFoundError(
            f"{served.tag} is a {contract.task} model; serve it with the tabular service"
        )
    classes = list(contract.classes)
    max_length = contract.max_length
    base_model = contract.base_model or ""
    profile = contract.reference_profile
    types = build_text_request_types(settings.max_text_chars, settings.max_instances)
    texts_type = types.texts
    predict_body_type = types.predict_body
    largest_batch = max(settings.max_batch_size, settings.max_instances)
    warmup_sizes = sorted({min(size, largest_batch) for size in settings.warmup_batch_sizes})
    label_type = class_label(classes)
    state = ServiceState()

    class TextClassifier:
        model_ref = bentoml.models.BentoModel(served.tag)

        def __init__(self) -> None:
            quiet_client_errors()
            if settings.torch_threads:
                torch.set_num_threads(settings.torch_threads)
            classifier = TransformersTextClassifier.load(
                Path(self.model_ref.path), max_length, device=settings.device
            )
            if classifier.classes != classes:
                raise ValueError(
                    f"{served.tag}: model labels {classifier.classes} differ from the stored "
                    f"metadata's classes {classes}"
                )
            self.served: ServedModel = served
            self.monitor = serving_monitor(served, classes, profile, settings, state)
            cache = (
                PredictionCache[np.ndarray](settings.cache_size, settings.cache_ttl_s)
                if settings.cache
                else None
            )
            self.predictor = TextPredictor(
                classifier,
                served.version,
                forward_plan(settings, classifier.device),
                self.monitor,
                cache,
            )
            self.warmup = Warmup(
                lambda size: self.predictor.warm(size, max_length),
                warmup_sizes,
                settings.warmup_rounds,
            )
            self.warmup.start()

        def __is_ready__(self) -> bool:
            return self.warmup.ready

        @bentoml.api(
            batchable=settings.batching,
            batch_dim=0,
            max_batch_size=settings.max_batch_size,
            max_latency_ms=settings.max_latency_ms,
        )
        def classify(self, texts: texts_type) -> JsonResponse[list[TextPrediction]]:  # type: ignore[valid-type]
            """Texts in, one prediction per text; concurrent requests are batched together."""
            return self.predictor.serve("classify", texts)

        @bentoml.api
        def predict(self, body: predict_body_type, /) -> TextPredictResponse:  # type: ignore[valid-type]
            """{"text": "..."} or {"texts": [...]}; labels, probabilities and timing."""
            started = time.perf_counter()
            request: TextsBody = body
            predictions = self.predictor.serve("predict", request.all_texts())
            return TextPredictResponse(
                model_name=served.name,
                model_version=served.version,
                base_model=base_model,
                latency_ms=round((time.perf_counter() - started) * 1000.0, 3),
                predictions=predictions,
            )

        @bentoml.api
        async def metadata(self) -> dict[str, Any]:
            """Model identity and metrics, classes, device, limits, cache and warm-up."""
            return {
                **served.describe(),
                "base_model": base_model,
                "method": contract.method,
                "max_length": max_length,
                "classes": classes,
                "device": self.predictor.classifier.device,
                "serving": {
                    **serving_limits(settings),
                    "batching": settings.batching,
                    "max_text_chars": settings.max_text_chars,
                    "cache": {
                        "enabled": settings.cache,
                        "max_entries": settings.cache_size,
                        "ttl_s": settings.cache_ttl_s,
                    },
                    "forward_max_texts": self.predictor.forward.max_texts,
                    "forward_max_tokens": self.predictor.forward.max_tokens,
                    "torch_threads": torch.get_num_threads(),
                },
                "warmup": self.warmup.describe(),
            }

        @bentoml.api
        async def feedback(self, request_id: RequestId, label: label_type) -> FeedbackOutcome:  # type: ignore[valid-type]
            """Ground truth for an earlier prediction, by the request_id it returned."""
            return record_feedback(self.monitor, request_id, label)

        @bentoml.api
        async def stats(self) -> ServingStats:
            """Counts per class, confidence, latency, accuracy, drift and cache hits."""
            return self.monitor.stats()

    TextClassifier.__qualname__ = TextClassifier.__name__
    resources = {"gpu": settings.gpus} if settings.gpus else None
    return ServiceBlueprint(
        cls=TextClassifier,
        config=service_config("text_classifier", settings, resources),
        middleware=guard_middleware(ENDPOINTS, settings, state),
        errors=endpoint_errors(batchable=settings.batching),
    )
