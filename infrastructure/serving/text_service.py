"""The text Bento service: thin APIs over the shared :class:`ServingRuntime`.

Built from :class:`TextServingSettings` when the entry module
(``infrastructure/serving/entrypoints/text.py``) is imported. Concurrent requests of one
variant are merged into micro-batches and scored in length-sorted forward passes
(``loaders.TextScorer``), on CUDA when torch sees one. Each version is warmed at every
configured batch size before it takes traffic (at start-up ``/readyz`` is 503 until then).
Annotations are evaluated eagerly (no ``__future__`` import): BentoML reads them to build
the API schemas, and they name types built from the settings.
"""

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import bentoml
import torch
from pydantic import BaseModel

from domain.ports import ModelLoader
from domain.serving.prediction import Prediction
from infrastructure.config.settings import TextServingSettings
from infrastructure.ml.device import usable_cores
from infrastructure.serving.client_error_logging import (
    quiet_client_errors,
    skip_silent_access_log,
)
from infrastructure.serving.loaders import (
    TextScorer,
    TransformersModelLoader,
    model_source,
)
from infrastructure.serving.runtime import (
    FeedbackAnswer,
    ServingRuntime,
)
from infrastructure.serving.service_blueprint import (
    ENDPOINTS,
    JsonResponse,
    RequestId,
    ServiceBlueprint,
    ServiceState,
    class_label,
    direct_state,
    endpoint_errors,
    guard_middleware,
    service_config,
    serving_limits,
)
from infrastructure.serving.shared_apis import RuntimeApis
from infrastructure.serving.stored_model import resolve_served_model
from infrastructure.serving.text_request import TextsBody, build_text_request_types
from infrastructure.serving.text_runner import (
    RunnerModelLoader,
    RunnerStats,
    Topology,
    front_workers,
    model_threads,
    use_gil_switch_interval,
    use_model_threads,
)
from shared.errors import ModelNotFoundError


class TextPredictResponse(BaseModel):
    model_name: str
    base_model: str
    latency_ms: float
    predictions: list[Prediction]


CacheListener = Callable[[str, int, int], None]
LoaderFactory = Callable[[TextServingSettings, CacheListener], ModelLoader]


def build_text_service(
    settings: TextServingSettings,
    loader_factory: LoaderFactory = TransformersModelLoader,
    runner: Any | None = None,
) -> ServiceBlueprint:
    """The text service class; ``loader_factory`` is the composition seam for other models
    (the overhead benchmark serves a zero-cost and a synthetic-GPU model through it).

    With ``runner`` (a decorated ``text_runner`` service) the class is the split topology's
    front: the same APIs, with the model behind ``bentoml.depends(runner)``.
    """
    served = resolve_served_model(settings)
    topology: Topology = "split" if runner is not None else "single"
    workers = front_workers(settings, topology, usable_cores())
    contract = served.contract
    if contract.max_length is None:
        raise ModelNotFoundError(
            f"{served.tag} is a {contract.task} model; serve it with the tabular service"
        )
    max_length = contract.max_length
    base_model = contract.base_model or ""
    types = build_text_request_types(settings.max_text_chars, settings.max_instances)
    texts_type = types.texts
    predict_body_type = types.predict_body
    label_type = class_label(contract.classes)
    state = ServiceState()

    class TextClassifier(RuntimeApis):
        model_ref = bentoml.models.BentoModel(served.tag)
        # Set below (split topology only): the runner's client in a worker.
        model_runner: Any

        def __init__(self) -> None:
            quiet_client_errors()
            skip_silent_access_log()
            on_cache: CacheListener = lambda version, hits, misses: self.runtime.record_cache(  # noqa: E731
                version, hits, misses
            )
            loader: ModelLoader
            if runner is None:
                use_gil_switch_interval(settings)
                threads = model_threads(settings, workers, usable_cores(), os.cpu_count())
                loader = loader_factory(use_model_threads(settings, threads), on_cache)
            else:
                loader = RunnerModelLoader(settings, lambda: self.model_runner, on_cache)
            self.runtime = ServingRuntime(settings, loader, model_source(settings), ENDPOINTS)
            state.runtime = self.runtime
            state.instance = self
            self.runtime.start()

        @bentoml.api
        async def classify(
            self,
            texts: texts_type,  # type: ignore[valid-type]
            ctx: bentoml.Context,
        ) -> JsonResponse[list[Prediction]]:
            """Texts in, one prediction per text; concurrent requests are batched together."""
            return await self.runtime.predict("classify", texts, ctx)

        @bentoml.api
        async def predict(
            self,
            body: predict_body_type,  # type: ignore[valid-type]
            /,
            ctx: bentoml.Context,
        ) -> TextPredictResponse:
            """{"text": "..."} or {"texts": [...]}; labels, probabilities and timing."""
            started = time.perf_counter()
            request: TextsBody = body
            predictions = await self.runtime.predict("predict", request.all_texts(), ctx)
            return TextPredictResponse(
                model_name=settings.model_name,
                base_model=base_model,
                latency_ms=round((time.perf_counter() - started) * 1000.0, 3),
                predictions=predictions,
            )

        @bentoml.api
        async def metadata(self) -> dict[str, Any]:
            """Model identity and metrics, versions per variant, device, limits, warm-up."""
            champion = self.runtime.pool.get("champion")
            scorer = champion.scorer if champion is not None else None
            text_scorer = scorer if isinstance(scorer, TextScorer) else None
            return {
                **served.describe(),
                "topology": topology,
                "workers": workers,
                "runner": RunnerStats.model_validate(await self.model_runner.stats()).model_dump()
                if runner is not None
                else None,
                "variants": self.runtime.describe_variants(),
                "base_model": base_model,
                "method": contract.method,
                "max_length": max_length,
                "classes": list(contract.classes),
                "device": text_scorer.device if text_scorer else None,
                "backend": dataclasses.asdict(text_scorer.backend) if text_scorer else None,
                "serving": {
                    **serving_limits(settings),
                    "max_text_chars": settings.max_text_chars,
                    "cache": {
                        "enabled": settings.cache,
                        "max_entries": settings.cache_size,
                        "ttl_s": settings.cache_ttl_s,
                    },
                    "forward_max_texts": text_scorer.forward.max_texts if text_scorer else None,
                    "forward_max_tokens": text_scorer.forward.max_tokens if text_scorer else None,
                    "torch_threads": torch.get_num_threads(),
                    "gil_switch_ms": round(sys.getswitchinterval() * 1000.0, 3),
                },
                "warmup": {
                    "ready": self.runtime.ready,
                    "error": self.runtime.startup_error,
                    "batch_sizes": sorted(set(settings.warmup_batch_sizes)),
                    "rounds": settings.warmup_rounds,
                    "last_round_ms": {
                        str(size): ms for size, ms in text_scorer.warmup.batch_ms.items()
                    }
                    if text_scorer
                    else {},
                    "seconds": text_scorer.warmup.seconds if text_scorer else None,
                },
            }

        @bentoml.api
        async def feedback(self, request_id: RequestId, label: label_type) -> FeedbackAnswer:  # type: ignore[valid-type]
            """Ground truth for an earlier prediction, by the request_id it returned."""
            return await self.runtime.feedback(request_id, label)

    TextClassifier.__qualname__ = TextClassifier.__name__
    resources = None
    if runner is None:
        resources = {"gpu": settings.gpus} if settings.gpus else None
    else:
        # BentoML collects dependencies from the class body when it decorates the class.
        TextClassifier.model_runner = bentoml.depends(runner)
    return ServiceBlueprint(
        cls=TextClassifier,
        config=service_config(
            "text_classifier", settings.model_copy(update={"workers": workers}), resources
        ),
        middleware=guard_middleware(ENDPOINTS, settings, state),
        errors=endpoint_errors(settings),
        ui=settings.ui,
        direct_state=direct_state(settings, state),
    )
