"""Baseline for the serving benchmark: a plain FastAPI endpoint, one request = one predict call.

    MODEL_TAG=iris-classifier:xxxx uvicorn benchmarks.plain_fastapi_server:app --port 8001

Loads the same stored model the Bento service serves; validation is a fixed pydantic model
of the four iris features, so it does less work per request than the service does.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any

import bentoml
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
MODEL: dict[str, Any] = {}


class IrisRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sepal_length_cm: float
    sepal_width_cm: float
    petal_length_cm: float
    petal_width_cm: float


@asynccontextmanager
async def lifespan(_: FastAPI) -> Any:
    MODEL["model"] = bentoml.sklearn.load_model(os.environ["MODEL_TAG"])
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/predict")
def predict(row: IrisRow) -> dict[str, Any]:
    model = MODEL["model"]
    frame = pd.DataFrame([row.model_dump()], columns=FEATURES)
    probabilities = model.predict_proba(frame)[0]
    best = int(probabilities.argmax())
    return {"label": str(model.classes_[best]), "probability": float(probabilities[best])}
