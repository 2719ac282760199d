"""The tabular Bento service: thin APIs over the shared :class:`ServingRuntime`.

The request types come from the feature schema of the champion stored when the entry module
(``infrastructure/serving/entrypoints/tabular.py``) is imported; a new version is swapped in
only if its schema is the same, so the types stay true. Annotations are evaluated eagerly
(no ``__future__`` import) because BentoML reads them to build the API schemas, and they
name per-model types: that is why the class is built in a function, not at module scope
(docs/architecture.md, "Serving v2").
"""

from typing import Any

import bentoml
from pydantic import BaseModel

from domain.data.schema import FeatureSchema, FeatureSpec
from domain.serving.prediction import Prediction, TabularPrediction
from infrastructure.config.settings import ServingSettings
from infrastructure.serving.client_error_logging import (
    quiet_client_errors,
    skip_silent_access_log,
)
from infrastructure.serving.loaders import SklearnModelLoader, TabularScorer, model_source
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
from infrastructure.serving.tabular_request import Row, build_request_types, instances_of
from shared.errors import ModelNotFoundError


class PredictResponse(BaseModel):
    model_name: str
    predictions: list[TabularPrediction]


# `metadata` lists at most this many known categories per feature (with the total count), so
# a high-cardinality column cannot make every metadata call megabytes long.
MAX_LISTED_CATEGORIES = 50


def describe_feature(spec: FeatureSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": spec.kind.value,
        "nullable": True,
        "categories": list(spec.categories[:MAX_LISTED_CATEGORIES]),
        "category_count": len(spec.categories),
    }


def with_unknown_categories(
    runtime: ServingRuntime, predictions: list[Prediction], rows: list[Row]
) -> list[TabularPrediction]:
    """Each answer names the categories its own version never saw in training."""
    answers = []
    for prediction, row in zip(predictions, rows, strict=True):
        model = runtime.pool.get(prediction.variant)  # type: ignore[arg-type]
        scorer = model.scorer if model is not None else None
        unknown = scorer.unknown_categories(row) if isinstance(scorer, TabularScorer) else {}
        # Fields copied from a built prediction: no second validation per row.
        answers.append(
            TabularPrediction.model_construct(**dict(prediction), unknown_categories=unknown)
        )
    return answers


def build_tabular_service(settings: ServingSettings) -> ServiceBlueprint:
    served = resolve_served_model(settings)
    if served.contract.feature_schema is None:
        raise ModelNotFoundError(
            f"{served.tag} is a {served.contract.task} model; serve it with the text service"
        )
    schema: FeatureSchema = served.contract.feature_schema
    types = build_request_types(schema, settings.max_instances)
    rows_type = types.rows
    predict_body_type = types.predict_body
    label_type = class_label(schema.classes)
    state = ServiceState()

    class TabularClassifier(RuntimeApis):
        model_ref = bentoml.models.BentoModel(served.tag)

        def __init__(self) -> None:
            quiet_client_errors()
            skip_silent_access_log()
            self.runtime = ServingRuntime(
                settings, SklearnModelLoader(), model_source(settings), ENDPOINTS
            )
            state.runtime = self.runtime
            state.instance = self
            self.runtime.start()

        @bentoml.api
        async def classify(
            self,
            rows: rows_type,  # type: ignore[valid-type]
            ctx: bentoml.Context,
        ) -> JsonResponse[list[TabularPrediction]]:
            """Raw feature rows in the order `metadata` lists; batched with other requests."""
            predictions = await self.runtime.predict("classify", rows, ctx)
            return with_unknown_categories(self.runtime, predictions, rows)

        @bentoml.api
        async def predict(
            self,
            body: predict_body_type,  # type: ignore[valid-type]
            /,
            ctx: bentoml.Context,
        ) -> PredictResponse:
            """Named features: one instance, or {"instances": [...]}."""
            rows = instances_of(body, types.field_names)
            predictions = await self.runtime.predict("predict", rows, ctx)
            return PredictResponse(
                model_name=settings.model_name,
                predictions=with_unknown_categories(self.runtime, predictions, rows),
            )

        @bentoml.api
        async def metadata(self) -> dict[str, Any]:
            """Model, versions per variant, training metrics, features and classes."""
            return {
                **served.describe(),
                "variants": self.runtime.describe_variants(),
                "features": [describe_feature(spec) for spec in schema.features],
                "classes": list(schema.classes),
                "serving": serving_limits(settings),
            }

        @bentoml.api
        async def feedback(self, request_id: RequestId, label: label_type) -> FeedbackAnswer:  # type: ignore[valid-type]
            """Ground truth for an earlier prediction, by the request_id it returned."""
            return await self.runtime.feedback(request_id, label)

    TabularClassifier.__qualname__ = TabularClassifier.__name__
    return ServiceBlueprint(
        cls=TabularClassifier,
        config=service_config("tabular_classifier", settings),
        middleware=guard_middleware(ENDPOINTS, settings, state),
        errors=endpoint_errors(settings),
        ui=settings.ui,
        direct_state=direct_state(settings, state),
    )
