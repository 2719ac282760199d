"""One prediction shape for every model kind."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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


@dataclass(frozen=True)
class ScoredBatch:
    """A batch's answers as columns (row i of each is input i): what
    :class:`Prediction` holds per row, for offline scoring of whole files."""

    variant: str
    model_version: str
    classes: tuple[str, ...]
    request_ids: list[str]
    labels: list[str]
    label_ids: np.ndarray
    probabilities: np.ndarray  # rows x classes, in ``classes`` order
