"""The floor of ``make bench-overhead``: bare uvicorn + Starlette doing the same JSON work.

    uvicorn benchmarks.bare_overhead_server:app --no-access-log

One route, ``POST /classify``: the body is validated by a pydantic model with the service's
limits and every text gets a :class:`Prediction` of the service's shape (fixed
probabilities, a fresh request id), serialized by pydantic. No middleware, no model, no
batching: what is left is what any Python HTTP server pays per request.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.serving.prediction import Prediction


class TextsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, max_length=64)


PREDICTIONS = TypeAdapter(list[Prediction])
PROBABILITIES = {"negative": 1 / 3, "positive": 2 / 3}


async def classify(request: Request) -> Response:
    try:
        body = TextsBody.model_validate_json(await request.body())
    except ValidationError as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    predictions = [
        Prediction(
            request_id=uuid.uuid4().hex,
            label="positive",
            label_id=1,
            probability=PROBABILITIES["positive"],
            probabilities=PROBABILITIES,
            model_version="1",
            variant="champion",
        )
        for _ in body.texts
    ]
    return Response(PREDICTIONS.dump_json(predictions), media_type="application/json")


async def ready(_: Request) -> Response:
    return Response("ok")


app = Starlette(routes=[Route("/classify", classify, methods=["POST"]), Route("/readyz", ready)])
