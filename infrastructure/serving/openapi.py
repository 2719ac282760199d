"""The services' OpenAPI document and error bodies, made to match what they really return.

BentoML 1.4 writes an OpenAPI 3.0 document whose API schemas are flattened for 3.0: it keeps
the first branch of every ``anyOf`` (so nullable fields read as plain numbers, ``predict``'s
"one instance or many" reads as one instance, and nullable features as not nullable), drops
``prefixItems`` (so a row's per-position types vanish) and declares error bodies whose
``detail`` is a string while its validation errors carry a list, and its other errors a
JSON array. This module builds the document from the same pydantic models BentoML validates
with, unflattened, as OpenAPI 3.1 (whose schemas are JSON Schema 2020-12, what pydantic
writes), and gives every error one declared shape (:class:`ErrorResponse`), which
``RequestGuardMiddleware`` enforces on every API response. ``bentoml build`` still stores
BentoML's own 3.0 document in the Bento (``apis/openapi.yaml``); ``/docs.json`` is this one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict

from application.monitoring.serving_monitor import error_kind

REF_TEMPLATE = "#/components/schemas/{model}"
# A domain error's message starts with the field it is about: "label: unknown class 'x'".
FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx an API route answers: a summary and one entry per problem."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error: str
    detail: list[ErrorDetail]


# What each status means on these services (the response descriptions in the document).
ERROR_STATUSES: dict[int, str] = {
    400: "Invalid input: `detail` names each field (`loc`) and the problem (`msg`)",
    401: "No valid API key: send `Authorization: Bearer <key>` (or `X-API-Key`)",
    403: "The API key's role may not call this endpoint (admin endpoints need role admin)",
    404: "Unknown id: no prediction with this request_id awaits feedback here, or no batch "
    "job with this job_id",
    409: "The batch job has not completed (still queued or running, or failed: see `error`)",
    408: "The request body did not arrive within the body timeout",
    413: "The request body is over the size limit",
    415: "The body's content type is not the API's (application/json; multipart/form-data "
    "with a boundary for jobs/submit)",
    429: "Too many requests in flight (max_concurrency, or with adaptive_concurrency the "
    "worker's measured answers per second x max_latency_ms when higher), the work queued "
    "ahead would outlast max_latency_ms (shed on arrival), or the client is over its rate "
    "(rate_limit_per_key); retry after `Retry-After` seconds",
    502: "Behind the edge (HAProxy) only: the service closed the connection without an "
    "answer, three times (workers restarting); retry after `Retry-After` seconds",
    503: "Not ready yet (the first version is loading), the request waited longer than "
    "max_latency_ms for its batch, (split text topology) the model runner is restarting, "
    "or (behind the edge) the service could not be reached; retry after `Retry-After` "
    "seconds",
    504: "The request took longer than the service timeout",
}
# 429 also comes from the edge when the service is full and its queue too; 502 and 503 from
# the edge when the service cannot answer (deploy/haproxy/haproxy.cfg, the same body shape).
COMMON_ERRORS = (400, 408, 413, 415, 429, 502, 503, 504)


def _details_from(status: int, payload: Any) -> tuple[str, list[ErrorDetail]]:
    kind = error_kind(status)
    if isinstance(payload, dict) and isinstance(payload.get("detail"), list):
        details = [
            ErrorDetail(
                loc=[part if isinstance(part, int) else str(part) for part in item.get("loc", [])],
                msg=str(item.get("msg", "")),
                type=str(item.get("type", kind)),
            )
            for item in payload["detail"]
            if isinstance(item, dict)
        ]
        return str(payload.get("error") or HTTPStatus(status).phrase), details
    messages: list[str]
    if isinstance(payload, list):
        messages = [
            str(item.get("error", item)) if isinstance(item, dict) else str(item)
            for item in payload
        ]
    elif isinstance(payload, dict) and "error" in payload:
        messages = [str(payload["error"])]
    else:
        messages = [str(payload).strip() or HTTPStatus(status).phrase]
    details = []
    for message in messages:
        field = FIELD_PREFIX.match(message)
        details.append(
            ErrorDetail(loc=["body", field.group(1)] if field else [], msg=message, type=kind)
        )
    return "; ".join(messages), details


def error_body(status: int, body: bytes) -> bytes:
    """Any error body (pydantic's, BentoML's JSON array, Starlette's text) as ErrorResponse.

    Pydantic's ``input`` and ``url`` are left out: echoing a rejected body back can make an
    error response as large as the request.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = text
    error, details = _details_from(status, payload)
    return ErrorResponse(error=error, detail=details).model_dump_json().encode()


# Statuses whose answers carry Retry-After (added by the request guard middleware).
RETRY_AFTER_STATUSES = frozenset({429, 502, 503})


def error_response_spec(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_STATUSES[status],
        "content": {
            "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model="ErrorResponse")}}
        },
    }
    if status in RETRY_AFTER_STATUSES:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return response


def _model_schema(model: Any, mode: str, schemas: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
    schemas.update(schema.pop("$defs", {}))
    schema.pop("root_input", None)  # BentoML's own marker, not JSON Schema
    return schema


SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "mlops keys create"},
    "headerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def service_openapi(
    service: Any,
    errors: Mapping[str, tuple[int, ...]],
    success: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """BentoML's document with each API in ``errors`` described by its real models.

    ``errors`` maps an API name to the error statuses it can answer with; one that can
    answer 401 needs an API key (either scheme).
    """
    spec: dict[str, Any] = service.openapi_spec.asdict()
    spec["openapi"] = "3.1.0"
    components = spec.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template=REF_TEMPLATE)
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    for api in service.apis.values():
        if api.name not in errors:
            continue
        operation = spec["paths"][api.route]["post"]
        request = _model_schema(api.input_spec, "validation", schemas)
        response = _model_schema(api.output_spec, "serialization", schemas)
        # APIs without required inputs (metadata, stats) answer a POST with no body too.
        operation["requestBody"] = {
            "required": bool(request.get("required")) or "properties" not in request,
            "content": {api.input_spec.mime_type(): {"schema": request}},
        }
        status = (success or {}).get(api.name, 200)
        operation["responses"] = {
            str(status): {
                "description": "Accepted" if status == 202 else "Successful Response",
                "content": {api.output_spec.mime_type(): {"schema": response}},
            },
            **{str(status): error_response_spec(status) for status in sorted(errors[api.name])},
        }
        if 401 in errors[api.name]:
            operation["security"] = [{"bearerKey": []}, {"headerKey": []}]
    # BentoML's error components are no longer referenced by any API.
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas.pop(name, None)
    return spec
