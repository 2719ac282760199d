"""scikit-learn pipelines: preprocessing lives inside the persisted model (train/serve parity)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from domain.data.schema import FeatureSchema
from shared.errors import ConfigError

ESTIMATORS: dict[str, type[ClassifierMixin]] = {
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
    "svc": SVC,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
}


def build_estimator(name: str, params: Mapping[str, Any], seed: int) -> ClassifierMixin:
    settings = dict(params)
    if name == "svc":
        # Serving reports per-class probabilities; scikit-learn >= 1.9 gets them from a
        # calibrated wrapper rather than SVC(probability=True).
        svc = SVC(random_state=seed)
        svc.set_params(**settings)
        return CalibratedClassifierCV(svc, ensemble=False, cv=3)
    if name == "logistic_regression":
        settings.setdefault("max_iter", 2000)
    estimator = ESTIMATORS[name]()
    if "random_state" in estimator.get_params():
        settings.setdefault("random_state", seed)
    estimator.set_params(**settings)
    return estimator


def check_estimator_params(name: str, params: Mapping[str, Any], field: str) -> None:
    """Fail early, naming the field, when a hyperparameter is unknown or badly typed."""
    try:
        estimator = build_estimator(name, params, seed=0)
        for part in (estimator, getattr(estimator, "estimator", None)):
            validate = getattr(part, "_validate_params", None)
            if validate is not None:
                validate()
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{field}: {error}") from error


def build_pipeline(schema: FeatureSchema, estimator: ClassifierMixin) -> Pipeline:
    transformers: list[tuple[str, Any, list[str]]] = []
    if schema.numeric:
        transformers.append(
            (
                "numeric",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                schema.numeric,
            )
        )
    if schema.categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="most_frequent", keep_empty_features=True),
                        ),
                        # Categories unseen in training encode to all zeros instead of failing.
                        ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                schema.categorical,
            )
        )
    return Pipeline(
        [("preprocess", ColumnTransformer(transformers, remainder="drop")), ("model", estimator)]
    )


class SklearnTabularTrainer:
    def fit(
        self,
        estimator: str,
        params: Mapping[str, Any],
        features: pd.DataFrame,
        labels: pd.Series,
        schema: FeatureSchema,
        seed: int,
    ) -> Pipeline:
        pipeline = build_pipeline(schema, build_estimator(estimator, params, seed))
        pipeline.fit(features, labels)
        return pipeline
