"""One prediction shape for every model kind."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Prediction(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    label: str
    label_id: int
    probability: float
    probabilities: dict[str, float]
    model_version: str
    variant: str


class TabularPrediction(Prediction):
    """Tabular answers also name the categories the model never saw in training."""

    unknown_categories: dict[str, str]
