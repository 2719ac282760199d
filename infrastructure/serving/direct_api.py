"""The direct path for the prediction APIs: BentoML's own input and output models, called
from the request guard without BentoML's per-request routing stack.

Why: under load, what BentoML runs between the request guard and the API function
(its context middleware, Starlette's exception middleware and router, the endpoint
wrapper's dependency injection, per-call imports and signature lookups, a streamed
response) was most of the service's own CPU per request (``make bench-overhead``, profiled
with py-spy). Every step that decides what a client sees is kept, and done by the same
objects: the body is validated by the API's input model exactly as BentoML's JSON serde
does it (``model_validate_json``), the same API function is called with the same
arguments, and the answer is checked by the API's output model and written as JSON.
Errors raised by the API are answered as BentoML's endpoint wrapper answers them.

A body that does not validate is handed back (``None``), so the full path answers it
with BentoML's own 400: one source for every error a client can get. The path is off with
``DIRECT_API=false`` and whenever tracing is on (BentoML's spans need its full path).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from inspect import iscoroutinefunction
from typing import Any

from _bentoml_sdk.io_models import ARGS, KWARGS, IORootModel
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import Headers

from infrastructure.serving.client_error_logging import BENTOML_HTTP_LOGGER

# BentoML's endpoint wrapper logs an API's exceptions here; so does the direct path, so the
# same filter (``client_error_logging``) turns client errors into one warning line.
logger = logging.getLogger(BENTOML_HTTP_LOGGER)

Scope = MutableMapping[str, Any]
# status, headers, body: what the request guard sends.
DirectAnswer = tuple[int, list[tuple[bytes, bytes]], bytes]
# The text of BentoML's endpoint wrapper for an API's 5xx (it hides the exception's own).
UNEXPECTED = "An unexpected error has occurred, please check the server log."


class RequestHeaders(Headers):
    """Starlette's request headers with a ``get`` that does not raise.

    Why: ``Headers.get`` is ``Mapping.get``, which raises and catches a ``KeyError`` for a
    missing header; the routing header is missing from most requests, and that exception
    was a twenty-fifth of the worker's CPU under load (py-spy, ``make bench-overhead``).
    The lookup is Starlette's own: names compared lowercased, the first match wins.
    """

    def get(self, key: str, default: Any = None) -> Any:
        wanted = key.lower().encode("latin-1")
        for name, value in self.raw:
            if name == wanted:
                return value.decode("latin-1")
        return default


@dataclass(slots=True)
class DirectRequest:
    headers: Headers


@dataclass(slots=True)
class DirectResponse:
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class DirectContext:
    """What the prediction APIs use of ``bentoml.Context``: the request's headers, and the
    response's status and headers."""

    request: DirectRequest
    response: DirectResponse = field(default_factory=DirectResponse)


@dataclass(frozen=True, slots=True)
class DirectEndpoint:
    """What the direct path needs of one API, read once when the service starts.

    Why once: on the input model class, a missing ``__root_input__`` goes through
    pydantic's metaclass ``__getattr__`` and an AttributeError, and ``model_fields``
    through a deprecation wrapper, per request.
    """

    method: Any
    path: str
    root_input: bool
    fields: tuple[str, ...]
    # BentoML renders a root output with json.dumps(model_dump(mode="json")); pydantic's
    # own serializer writes the same JSON values at a fraction of the cost.
    dump_root: Callable[[Any], bytes] | None

    @classmethod
    def of(cls, service: Any, endpoint: str) -> DirectEndpoint:
        method = service.apis[endpoint.replace("/", "_")]
        fields = method.input_spec.model_fields
        # Only what BentoML's endpoint does the plain way: an async function taking JSON
        # fields (or one root body), answering JSON; anything else is refused here rather
        # than answered differently.
        if (
            method.batchable
            or not iscoroutinefunction(method.func)
            or ARGS in fields
            or KWARGS in fields
            or method.input_spec.multipart_fields
            or method.input_spec.mime_type() != "application/json"
            or method.output_spec.mime_type() != "application/json"
        ):
            raise ValueError(f"{endpoint}: not an API the direct path can answer")
        dump_root = None
        if issubclass(method.output_spec, IORootModel):
            root = method.output_spec.model_fields["root"].annotation
            dump_root = TypeAdapter(root).dump_json
        return cls(
            method=method,
            path=f"/{endpoint}",
            root_input=bool(getattr(method.input_spec, "__root_input__", False)),
            fields=tuple(fields),
            dump_root=dump_root,
        )


class DirectApis:
    """Answers the named APIs of one service, or hands a request back to the full path."""

    def __init__(
        self, service: Any, instance: Callable[[], Any | None], endpoints: Iterable[str]
    ) -> None:
        self._instance = instance
        self._server = f"BentoML Service/{service.name}".encode()
        self._endpoints = {name: DirectEndpoint.of(service, name) for name in endpoints}

    @property
    def endpoints(self) -> frozenset[str]:
        return frozenset(self._endpoints)

    async def answer(self, endpoint: str, scope: Scope, body: bytes) -> DirectAnswer | None:
        api = self._endpoints.get(endpoint)
        instance = self._instance()
        if api is None or instance is None:
            return None
        # BentoML routes an API as POST on exactly its path: any other method gets its 405,
        # and a trailing slash its redirect, from the full path.
        if scope.get("method") != "POST" or scope.get("path") != api.path:
            return None
        method = api.method
        try:
            data = method.input_spec.model_validate_json(body or b"{}")
        except ValidationError:
            return None
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        if api.root_input:
            args = (data.root,) if isinstance(data, IORootModel) else (data,)
        else:
            kwargs = {name: getattr(data, name) for name in api.fields}
        ctx = DirectContext(DirectRequest(RequestHeaders(scope=scope)))
        if method.ctx_param is not None:
            kwargs[method.ctx_param] = ctx
        try:
            output = await method.func(instance, *args, **kwargs)
            payload = self._render(api, output)
        except ValidationError as error:
            logger.error("Exception on /%s [POST]", endpoint, exc_info=True)
            return self._error(400, error_detail(error))
        except BentoMLException as error:
            logger.error("Exception on /%s [POST]", endpoint, exc_info=True)
            status = int(error.error_code.value)
            if status in (401, 403):
                return self._error(status, {"error": "Authorization error"})
            if status >= 500:
                return self._error(status, {"error": UNEXPECTED})
            # A one-element list, as BentoML's wrapper writes it; the guard's error
            # rewriting reads either form.
            return self._error(status, [{"error": str(error)}])
        except Exception:
            logger.error("Exception on /%s [POST]", endpoint, exc_info=True)
            return self._error(500, {"error": UNEXPECTED})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"server", self._server),
            *(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in ctx.response.headers.items()
            ),
        ]
        return ctx.response.status_code, headers, payload

    def _render(self, api: DirectEndpoint, output: Any) -> bytes:
        if api.dump_root is not None:
            # Validated as BentoML's output model would (its constructor), then written.
            return api.dump_root(api.method.output_spec(output).root)
        if isinstance(output, BaseModel):
            return output.model_dump_json().encode()  # what BentoML's JSON serde writes
        raise TypeError(f"{api.path} returned {type(output).__name__}, not its output model")

    def _error(self, status: int, detail: Any) -> DirectAnswer:
        payload = json.dumps(detail).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"server", self._server),
        ]
        return status, headers, payload


def error_detail(error: ValidationError) -> dict[str, Any]:
    """BentoML's endpoint wrapper's body for a pydantic error raised by an API."""
    return {
        "error": f"{error.error_count()} validation error for {error.title}",
        "detail": error.errors(include_context=False, include_input=False),
    }
