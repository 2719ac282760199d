"""Unbatched baseline for the text benchmark: one forward pass per request, same model.

    MODEL_PATH=/path/to/stored/model MAX_LENGTH=64 uvicorn benchmarks.plain_text_server:app

A plain FastAPI endpoint over the same stored model the Bento service serves. Forward passes
run one at a time (a lock): torch already spreads one pass over every core, and concurrent
passes would only fight for them.
"""

from __future__ import annotations

import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from infrastructure.ml.text.classifier import TransformersTextClassifier

MODEL: dict[str, Any] = {}
LOCK = threading.Lock()


class TextsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, max_length=64)


@asynccontextmanager
async def lifespan(_: FastAPI) -> Any:
    MODEL["classifier"] = TransformersTextClassifier.load(
        Path(os.environ["MODEL_PATH"]), int(os.environ.get("MAX_LENGTH", "64"))
    )
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/classify")
def classify(body: TextsBody) -> list[dict[str, Any]]:
    classifier: TransformersTextClassifier = MODEL["classifier"]
    with LOCK:
        scores = classifier.predict_proba(body.texts, batch_size=1)
    best = scores.argmax(axis=1)
    return [
        {"label": classifier.classes[i], "probability": float(row[i])}
        for i, row in zip(best, scores, strict=True)
    ]
