"""The tabular Bento service, generic over any model the tabular pipeline stored.

The request types come from the stored feature schema, so the class is built at import
time of the entry module (``infrastructure/serving/entrypoints/tabular.py``) from
:class:`ServingSettings`. Annotations here are evaluated eagerly (no ``__future__`` import)
because BentoML reads them to build the API schemas, and they name per-model types.
"""

from typing import Any

import bentoml
import numpy as np
import pandas as pd
from pydantic import BaseModel

from application.monitoring.serving_monitor import FeedbackOutcome, ServingStats
from domain.data.schema import FeatureKind, FeatureSchema, FeatureSpec
from infrastructure.config.settings import ServingSettings
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
from infrastructure.serving.tabular_request import Row, build_request_types, instances_of
from shared.errors import ModelNotFoundError


class RowPrediction(BaseModel):
    request_id: str
    class_name: str
    class_id: int
    confidence: float
    probabilities: dict[str, float]


class InstancePrediction(RowPrediction):
    unknown_categories: dict[str, str]


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[InstancePrediction]


class TabularPredictor:
    """Model + schema: turns validated rows into predictions. One per worker."""

    def __init__(self, model: Any, schema: FeatureSchema) -> None:
        self._model = model
        self._schema = schema
        self._names = schema.names
        self._numeric = [i for i, s in enumerate(schema.features) if s.kind is FeatureKind.NUMERIC]
        self._known = {
            s.name: frozenset(s.categories)
            for s in schema.features
            if s.kind is FeatureKind.CATEGORICAL
        }
        self.classes: list[str] = [str(c) for c in model.classes_]

    def frame(self, rows: list[Row]) -> pd.DataFrame:
        """Rows as training saw them: numbers as float64 and missing values as NaN.

        A ``null`` category must become NaN, not None: the Pipeline's imputer for object
        columns matches missing values by ``x != x``, which None does not satisfy.
        """
        frame = pd.DataFrame.from_records(rows, columns=self._names)
        for index, name in enumerate(self._names):
            if index in self._numeric:
                frame[name] = frame[name].astype("float64")
            else:
                frame[name] = frame[name].astype(object).where(frame[name].notna(), np.nan)
        return frame

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        if hasattr(self._model, "predict_proba"):
            probabilities: np.ndarray = np.asarray(self._model.predict_proba(frame), dtype=float)
            return probabilities
        # Estimators without probabilities: the predicted class gets all the mass.
        predicted = np.asarray(self._model.predict(frame)).astype(str)
        one_hot: np.ndarray = (predicted[:, None] == np.array(self.classes)[None, :]).astype(float)
        return one_hot

    def unknown_categories(self, row: Row) -> dict[str, str]:
        return {
            name: value
            for name, value in zip(self._names, row, strict=True)
            if name in self._known and value is not None and value not in self._known[name]
        }

    def window_values(
        self, frame: pd.DataFrame
    ) -> tuple[dict[str, np.ndarray], dict[str, list[str | None]]]:
        """Values for the drift windows: NaN and None mark missing ones."""
        numeric = {self._names[i]: frame[self._names[i]].to_numpy() for i in self._numeric}
        categorical = {
            name: [None if pd.isna(value) else str(value) for value in frame[name]]
            for name in self._known
        }
        return numeric, categorical


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


def _predictions(
    classes: list[str], probabilities: np.ndarray, best: np.ndarray, ids: list[str]
) -> list[RowPrediction]:
    return [
        RowPrediction(
            request_id=request_id,
            class_name=classes[index],
            class_id=int(index),
            confidence=float(row[index]),
            probabilities=dict(zip(classes, map(float, row), strict=True)),
        )
        for request_id, index, row in zip(ids, best, probabilities, strict=True)
    ]


def build_tabular_service(settings: ServingSettings) -> ServiceBlueprint:
    served = resolve_served_model(settings)
    if served.contract.feature_schema is None:
        raise ModelNotFoundError(
            f"{served.tag} is a {served.contract.task} model; serve it with the text service"
        )
    schema: FeatureSchema = served.contract.feature_schema
    profile = served.contract.reference_profile
    types = build_request_types(schema, settings.max_instances)
    rows_type = types.rows
    predict_body_type = types.predict_body
    label_type = class_label(schema.classes)
    state = ServiceState()

    class TabularClassifier:
        model_ref = bentoml.models.BentoModel(served.tag)

        def __init__(self) -> None:
            quiet_client_errors()
            model = bentoml.sklearn.load_model(self.model_ref)
            self.served: ServedModel = served
            self.predictor = TabularPredictor(model, schema)
            self.monitor = serving_monitor(served, self.predictor.classes, profile, settings, state)

        def _serve(self, endpoint: str, rows: list[Row]) -> list[RowPrediction]:
            frame = self.predictor.frame(rows)
            probabilities = self.predictor.probabilities(frame)
            classes = self.predictor.classes
            numeric, categorical = self.predictor.window_values(frame)
            best = probabilities.argmax(axis=1)
            predicted = [classes[i] for i in best]
            confidences = probabilities[np.arange(len(best)), best]
            ids = self.monitor.observe(endpoint, numeric, categorical, predicted, confidences)
            return _predictions(classes, probabilities, best, ids)

        @bentoml.api(
            batchable=True,
            batch_dim=0,
            max_batch_size=settings.max_batch_size,
            max_latency_ms=settings.max_latency_ms,
        )
        def classify(self, rows: rows_type) -> JsonResponse[list[RowPrediction]]:  # type: ignore[valid-type]
            """Raw feature rows in the order `metadata` lists; adaptively batched."""
            return self._serve("classify", rows)

        @bentoml.api
        def predict(self, body: predict_body_type, /) -> PredictResponse:  # type: ignore[valid-type]
            """Named features: one instance, or {"instances": [...]}."""
            rows = instances_of(body, types.field_names)
            predictions = self._serve("predict", rows)
            return PredictResponse(
                model_name=served.name,
                model_version=served.version,
                predictions=[
                    InstancePrediction(
                        **prediction.model_dump(),
                        unknown_categories=self.predictor.unknown_categories(row),
                    )
                    for prediction, row in zip(predictions, rows, strict=True)
                ],
            )

        @bentoml.api
        async def metadata(self) -> dict[str, Any]:
            """Model name, version, alias, training metrics, features and classes."""
            return {
                **served.describe(),
                "features": [describe_feature(spec) for spec in schema.features],
                "classes": self.predictor.classes,
                "serving": serving_limits(settings),
            }

        @bentoml.api
        async def feedback(self, request_id: RequestId, label: label_type) -> FeedbackOutcome:  # type: ignore[valid-type]
            """Ground truth for an earlier prediction, by the request_id it returned."""
            return record_feedback(self.monitor, request_id, label)

        @bentoml.api
        async def stats(self) -> ServingStats:
            """Counts per class, confidence, latency percentiles, accuracy and drift."""
            return self.monitor.stats()

    TabularClassifier.__qualname__ = TabularClassifier.__name__
    return ServiceBlueprint(
        cls=TabularClassifier,
        config=service_config("tabular_classifier", settings),
        middleware=guard_middleware(ENDPOINTS, settings, state),
        errors=endpoint_errors(batchable=True),
    )
