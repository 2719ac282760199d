"""ASGI middleware in front of a service's API routes: body-size limit, one error shape,
request outcomes, and the service's OpenAPI document.

BentoML turns any exception raised while it reads a body into a 500, so an oversized body
must be refused here, before the body reaches BentoML. The body is read once (up to the
limit) and replayed to the app. Every answered API request is reported with its status and
time, which is how rejected requests (400, 413, 429, 503) reach the error metrics. Error
bodies from any layer (pydantic, BentoML, Starlette) are rewritten into the one shape the
OpenAPI document declares (``infrastructure.serving.openapi``), and ``/docs.json`` answers
with that document instead of BentoML's. ``/metrics`` is answered here too, so it exists
whether or not BentoML's own request metrics middleware is on (``REQUEST_METRICS``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    MutableMapping,
)
from typing import Any, Protocol

from domain.security.api_keys import ApiKey, Role, authenticate
from infrastructure.serving.in_flight_limit import InFlightLimit
from infrastructure.serving.openapi import RETRY_AFTER_STATUSES
from infrastructure.serving.rate_limit import KeyRateLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# endpoint, status, seconds, and the variant that answered (its response header), if any
RequestObserver = Callable[[str, int, float, str | None], None]
VARIANT_HEADER = b"x-model-variant"
OpenApiDocument = Callable[[], dict[str, Any]]
ErrorBody = Callable[[int, bytes], bytes]
DOCS_PATH = "/docs.json"
METRICS_PATH = "/metrics"
# The Prometheus exposition of every worker's metrics, and its content type.
MetricsExposition = Callable[[], tuple[bytes, str]]
# Shed (429) and overloaded (503) answers tell clients when to retry: one second covers the
# latency bound the queue is kept within, and spreads retries past the burst that caused it.
RETRY_AFTER_S = b"1"
# (status, message, key) for a request: a refusal (401/403) or the key that was accepted.
Authorization = tuple[int, str, ApiKey | None]
Authorizer = Callable[[str, Scope], Authorization]
# (endpoint, scope, body) -> (status, headers, body), or None for the full path to answer.
DirectAnswerer = Callable[
    [str, Scope, bytes], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes] | None]
]


def presented_token(scope: Scope) -> str | None:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key":
            return bytes(value).decode("latin-1").strip() or None
    return None


class KeyAuthorizer:
    """Which endpoints need which role, checked against the keys the store holds now."""

    def __init__(self, keys: Callable[[], dict[str, ApiKey]], roles: dict[str, Role]) -> None:
        self._keys = keys
        self._roles = roles

    def __call__(self, endpoint: str, scope: Scope) -> Authorization:
        needed = self._roles.get(endpoint)
        token = presented_token(scope)
        key = authenticate(self._keys(), token) if token is not None else None
        if needed is None:
            # Open, but a valid key still names the caller (its rate limit, the audit log);
            # an invalid one is ignored there, as no key would be.
            return 200, "", key
        if key is None:
            problem = "no API key was sent" if token is None else "the API key is not valid"
            return (
                401,
                f"authorization: {problem}; {endpoint} needs a key with role {needed} "
                "(send `Authorization: Bearer <key>`; keys come from `mlops keys create`)",
                None,
            )
        if not key.role.permits(needed):
            return (
                403,
                f"authorization: key {key.name!r} ({key.id}) has role {key.role}; "
                f"{endpoint} needs role {needed}",
                key,
            )
        return 200, "", key


class InFlightGauge(Protocol):
    def add(self, endpoint: str, change: int) -> None: ...


class RequestDeadlines:
    """Deadlines of a worker's requests (bodies being read, answers being computed),
    checked by one watchdog task.

    Why not ``asyncio.timeout`` around each read: its timer and state machine were a
    twentieth of a worker's CPU under load (py-spy with ``--gil``, ``make bench-overhead``),
    for deadlines that almost never fire. Here a request costs a dict insert and a pop; the
    watchdog runs only while deadlines are armed and wakes ``tick_s`` apart, so a deadline
    fires up to ``tick_s`` late. A fired deadline cancels the request's task; the guard
    tells that cancellation from any other with :meth:`fired` and answers it with its 408
    (body) or 504 (answer).
    """

    def __init__(self, tick_s: float) -> None:
        self._tick_s = tick_s
        self._due: dict[asyncio.Task[Any], float] = {}
        self._fired: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    def arm(self, task: asyncio.Task[Any], seconds: float) -> None:
        self._due[task] = time.monotonic() + seconds
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    def fired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the task's deadline fired (and cancelled it): asked where the awaited
        work raised ``CancelledError``. Any other cancellation is the caller's to re-raise.

        Why the guard arms, awaits and asks inline instead of awaiting a wrapper coroutine:
        a wrapper is one more frame to create and to pass through on every resumption, for
        each of a request's two deadlines (about 3 us of a 75 us request, py-spy,
        ``make bench-overhead``).
        """
        if task in self._fired:
            self._fired.discard(task)
            task.uncancel()
            return True
        return False

    def disarm(self, task: asyncio.Task[Any]) -> None:
        """Ends the task's deadline. Called after :meth:`fired` was asked, if it was: a
        deadline that fired just as the work finished is forgotten here, and its
        cancellation reaches the task's next await, as any other would."""
        self._due.pop(task, None)
        self._fired.discard(task)

    async def _watch(self) -> None:
        while self._due:
            await asyncio.sleep(self._tick_s)
            now = time.monotonic()
            for task, due in list(self._due.items()):
                if due <= now:
                    del self._due[task]
                    self._fired.add(task)
                    task.cancel()


class RequestGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        endpoints: frozenset[str],
        max_body_bytes: int,
        observe: RequestObserver,
        limit_setting: str = "MLOPS_SERVE_MAX_BODY_BYTES",
        error_body: ErrorBody | None = None,
        openapi: OpenApiDocument | None = None,
        unavailable: Callable[[], str | None] | None = None,
        prediction_endpoints: frozenset[str] = frozenset(),
        authorize: Authorizer | None = None,
        body_timeout_s: float = 10.0,
        max_in_flight: int = 0,
        in_flight_latency_bound_s: float = 0.0,
        upload_endpoints: Mapping[str, int] | None = None,
        rate_limit: KeyRateLimiter | None = None,
        rate_limited_endpoints: frozenset[str] = frozenset(),
        rate_setting: str = "MLOPS_SERVE_RATE_LIMIT_PER_KEY",
        direct: DirectAnswerer | None = None,
        direct_endpoints: frozenset[str] = frozenset(),
        metrics: MetricsExposition | None = None,
        in_flight_gauge: InFlightGauge | None = None,
        in_flight_limit_gauge: Callable[[int], None] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.in_flight_gauge = in_flight_gauge
        # The prediction APIs answered without BentoML's routing stack (``direct_api``).
        self.direct = direct
        self.direct_endpoints = direct_endpoints
        self.rate_limit = rate_limit
        self.rate_limited_endpoints = rate_limited_endpoints
        self.rate_setting = rate_setting
        # Endpoints taking a multipart file upload, each with its own body limit.
        self.upload_endpoints = dict(upload_endpoints or {})
        self.body_timeout_s = body_timeout_s
        self._deadlines = RequestDeadlines(tick_s=min(1.0, body_timeout_s / 10))
        # A direct answer is not under BentoML's timeout middleware (see ``GuardFirstService``),
        # so the guard gives its 504 itself; requests passed on to the app still have BentoML's.
        self.timeout_s = timeout_s
        self._answer_deadlines = RequestDeadlines(tick_s=min(1.0, timeout_s / 10))
        self.max_in_flight = max_in_flight
        # Above max_in_flight, up to what this worker answers within the latency bound
        # (``in_flight_limit``); 0 s keeps max_in_flight a fixed count.
        self._limit = InFlightLimit(
            max_in_flight,
            in_flight_latency_bound_s,
            on_change=in_flight_limit_gauge if max_in_flight else None,
        )
        self._follows_rate = bool(max_in_flight and in_flight_latency_bound_s)
        self._in_flight = 0
        self.authorize = authorize
        self.endpoints = endpoints
        self.max_body_bytes = max_body_bytes
        self.observe = observe
        self.limit_setting = limit_setting
        self.error_body = error_body
        self.openapi = openapi
        self.unavailable = unavailable
        self.prediction_endpoints = prediction_endpoints
        self._openapi_bytes: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == DOCS_PATH and self.openapi is not None and scope.get("method") == "GET":
            await self._send_body(send, 200, self._document())
            return
        if path == METRICS_PATH and self.metrics is not None:
            await self._metrics(scope, send)
            return
        endpoint = path.strip("/")
        if endpoint not in self.endpoints:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        variant: str | None = None
        held_start: Message | None = None
        held_body: list[bytes] = []
        task = asyncio.current_task()
        assert task is not None, "ASGI apps run in a task"

        async def observed_send(message: Message) -> None:
            nonlocal status, held_start, variant
            if message["type"] == "http.response.start":
                status = int(message["status"])
                variant = answered_variant(message.get("headers", []))
                if status >= 400 and self.error_body is not None:
                    held_start = message  # sent with the rewritten body
                    return
            elif held_start is not None and message["type"] == "http.response.body":
                held_body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = self.error_body(status, b"".join(held_body)) if self.error_body else b""
                headers = [
                    (name, value)
                    for name, value in held_start.get("headers", [])
                    if name not in (b"content-length", b"content-type")
                ]
                if status in RETRY_AFTER_STATUSES and all(n != b"retry-after" for n, _ in headers):
                    headers.append((b"retry-after", RETRY_AFTER_S))
                await send(
                    {
                        **held_start,
                        "headers": [
                            *headers,
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        self._in_flight += 1
        gauge = self.in_flight_gauge
        if gauge is not None:
            gauge.add(endpoint, 1)
        try:
            # The floor first: below it (nearly every request) the limit is not consulted.
            if (
                self.max_in_flight
                and self._in_flight > self.max_in_flight
                and self._in_flight > (limit := self._limit.current())
            ):
                # Refused before the body is read or anything is parsed: the cheapest
                # answer the worker can give when more requests arrive than it can serve.
                status = 429
                await self._refuse(send, 429, self._over_limit(limit), retry_after=True)
                return
            key: ApiKey | None = None
            if self.authorize is not None:
                refused, why, key = self.authorize(endpoint, scope)
                if refused != 200:
                    status = refused
                    await self._refuse(send, refused, why)
                    return
                if key is not None:
                    # Who called: the admin APIs write it to the audit log.
                    scope.setdefault("state", {})["api_key"] = key
            if self.rate_limit is not None and endpoint in self.rate_limited_endpoints:
                client = f"key {key.name!r} ({key.id})" if key else _client_address(scope)
                wait_s = self.rate_limit.take(client)
                if wait_s:
                    status = 429
                    await self._refuse(
                        send,
                        429,
                        f"rate limit: {client} is over {self.rate_limit.rate:g} requests/s "
                        f"({self.rate_setting}); retry in {wait_s:.2f} s",
                        retry_after_s=max(1, math.ceil(wait_s)),
                    )
                    return
            reason = self.unavailable() if self.unavailable is not None else None
            if reason is not None and endpoint in self.prediction_endpoints:
                # Answered here: BentoML hides the message of any 5xx an API raises.
                status = 503
                message = json.dumps({"error": f"service unavailable: {reason}"}).encode()
                if self.error_body is not None:
                    message = self.error_body(503, message)
                await self._send_body(send, 503, message, retry_after=5)
                return
            upload_limit = self.upload_endpoints.get(endpoint)
            content_type = (
                self._content_type(scope) if upload_limit is None else self._not_multipart(scope)
            )
            if content_type is not None:
                status = 415
                expected = (
                    "application/json"
                    if upload_limit is None
                    else "multipart/form-data with a boundary"
                )
                message = json.dumps(
                    {"error": f"content-type: expected {expected}, got {content_type}"}
                ).encode()
                if self.error_body is not None:
                    message = self.error_body(415, message)
                await self._send_body(send, 415, message)
                return
            limit = upload_limit or self.max_body_bytes
            self._deadlines.arm(task, self.body_timeout_s)
            try:
                body = await self._read_body(scope, receive, limit)
            except asyncio.CancelledError:
                if not self._deadlines.fired(task):
                    raise
                # A client trickling its body would hold the request (and its memory) open
                # for as long as it likes; it gets a 408 and the connection is closed.
                status = 408
                await self._refuse(
                    send,
                    408,
                    f"request body not received within {self.body_timeout_s:g} s",
                    close=True,
                )
                return
            finally:
                self._deadlines.disarm(task)
            if body is None:
                status = 413
                await self._payload_too_large(send, upload_limit)
                return
            if upload_limit is not None and (problem := await _multipart_problem(scope, body)):
                status = 400
                await self._refuse(send, 400, problem)
                return

            answered = await self._answer(task, endpoint, scope, body, receive, send, observed_send)
            if answered is not None:
                status, variant = answered
        finally:
            self._in_flight -= 1
            if gauge is not None:
                gauge.add(endpoint, -1)
            finished = time.perf_counter()
            if self._follows_rate and status not in RETRY_AFTER_STATUSES:
                self._limit.answered(finished)
            self.observe(endpoint, status, finished - started, variant)

    def _over_limit(self, limit: int) -> str:
        if limit > self.max_in_flight:
            why = (
                f"MAX_CONCURRENCY {self.max_in_flight}, raised to the "
                f"{self._limit.rate:.0f} answers/s it measured x the "
                f"{self._limit.latency_bound_s * 1000:.0f} ms latency bound"
            )
        else:
            why = "MAX_CONCURRENCY"
        return f"overloaded: {limit} requests are in flight in this worker ({why}); retry later"

    async def _metrics(self, scope: Scope, send: Send) -> None:
        """GET (and HEAD) /metrics, as BentoML's route answered them; 405 for the rest."""
        assert self.metrics is not None
        method = scope.get("method")
        if method not in ("GET", "HEAD"):
            refused = b"Method Not Allowed"
            allow = [(b"allow", b"GET, HEAD")]
            await self._send_body(
                send, 405, refused, content_type=b"text/plain; charset=utf-8", extra=allow
            )
            return
        # In a thread, as BentoML's own route does: it reads every worker's files.
        exposition, media_type = await asyncio.to_thread(self.metrics)
        await self._send_body(
            send, 200, exposition, content_type=media_type.encode("latin-1"), head=method == "HEAD"
        )

    async def _answer(
        self,
        task: asyncio.Task[Any],
        endpoint: str,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        observed_send: Send,
    ) -> tuple[int, str | None] | None:
        """The direct path's answer, or the app's with the body replayed to it.

        A direct answer below 400 goes out by ``send`` (``observed_send`` would only read
        its status and variant, which are returned instead: two coroutine calls less per
        request); everything else by ``observed_send``, and None is returned.
        """
        if self.direct is not None and endpoint in self.direct_endpoints:
            deadlines = self._answer_deadlines
            deadlines.arm(task, self.timeout_s)
            try:
                answer = await self.direct(endpoint, scope, body)
            except asyncio.CancelledError:
                if not deadlines.fired(task):
                    raise
                message = f"not answered within {self.timeout_s:g} s (the service timeout)"
                payload = json.dumps({"error": message}).encode()
                # In the error shape, and counted, by ``observed_send``.
                await self._send_body(observed_send, 504, payload)
                return None
            finally:
                deadlines.disarm(task)
            if answer is not None:
                code, headers, payload = answer
                start = {"type": "http.response.start", "status": code, "headers": headers}
                if code < 400:
                    await send(start)
                    await send({"type": "http.response.body", "body": payload})
                    return code, answered_variant(headers)
                await observed_send(start)
                await observed_send({"type": "http.response.body", "body": payload})
                return None

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, observed_send)
        return None

    @staticmethod
    def _content_type(scope: Scope) -> str | None:
        """A declared content type other than JSON, or None when the body may be JSON.

        BentoML reads form and multipart bodies itself, and a multipart body without a
        boundary made it answer 500; every API here takes JSON, so anything else is a 415.
        A request without a content type is read as JSON (``curl -X POST .../stats``).
        """
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                if value == b"application/json":
                    return None  # what nearly every client sends: no decoding needed
                declared = bytes(value).decode("latin-1")
                media = declared.split(";", 1)[0].strip().lower()
                if media in ("", "application/json") or media.endswith("+json"):
                    return None
                return declared
        return None

    @staticmethod
    def _not_multipart(scope: Scope) -> str | None:
        """The declared content type unless it is multipart/form-data with a boundary
        (BentoML answered a multipart body without one with a 500)."""
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                declared = bytes(value).decode("latin-1")
                media, _, params = declared.partition(";")
                if media.strip().lower() == "multipart/form-data" and "boundary=" in params:
                    return None
                return declared
        return "(none)"

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None once it exceeds ``limit`` (declared or actual size)."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        return None
                except ValueError:
                    pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _document(self) -> bytes:
        # Built on first request, not at start-up: BentoML builds the service's routes first.
        if self._openapi_bytes is None:
            assert self.openapi is not None
            self._openapi_bytes = json.dumps(self.openapi()).encode()
        return self._openapi_bytes

    async def _refuse(
        self,
        send: Send,
        status: int,
        message: str,
        close: bool = False,
        retry_after: bool = False,
        retry_after_s: int = 0,
    ) -> None:
        payload = json.dumps({"error": message}).encode()
        if self.error_body is not None:
            payload = self.error_body(status, payload)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="bento-mlops"'))
        if close:
            headers.append((b"connection", b"close"))
        if retry_after_s:
            headers.append((b"retry-after", str(retry_after_s).encode()))
        elif retry_after:
            headers.append((b"retry-after", RETRY_AFTER_S))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _payload_too_large(self, send: Send, upload_limit: int | None = None) -> None:
        limit, setting = (
            (self.max_body_bytes, self.limit_setting)
            if upload_limit is None
            else (upload_limit, self.limit_setting.replace("MAX_BODY_BYTES", "JOBS_MAX_BYTES"))
        )
        message = f"request body exceeds the {limit}-byte limit (setting {setting})"
        payload = json.dumps({"error": message}).encode()
        if self.error_body is not None:
            payload = self.error_body(413, payload)
        await self._send_body(send, 413, payload, close=True)

    @staticmethod
    async def _send_body(
        send: Send,
        status: int,
        payload: bytes,
        close: bool = False,
        retry_after: int = 0,
        content_type: bytes = b"application/json",
        extra: list[tuple[bytes, bytes]] | None = None,
        head: bool = False,
    ) -> None:
        """The payload with its type and length; ``head`` sends the headers alone (HEAD)."""
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(payload)).encode()),
            *(extra or ()),
        ]
        if close:
            headers.append((b"connection", b"close"))
        if retry_after:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else payload})


def answered_variant(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The variant that answered, from a response's headers (None if none is named)."""
    for name, value in headers:
        if name == VARIANT_HEADER:
            return bytes(value).decode("latin-1")
    return None


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return f"client {client[0]}" if client else "client (unknown address)"


async def _multipart_problem(scope: Scope, body: bytes) -> str | None:
    """Why a multipart upload cannot be read, or None. BentoML answered a malformed
    multipart body (a part without headers) with a 500; Starlette's parser, the one it uses,
    names the problem here first."""
    from starlette.datastructures import Headers
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(Headers(scope=scope), stream()).parse()
    except MultiPartException as error:
        return f"multipart body: {error.message}"
    except Exception as error:  # the parser's own errors (bad headers, decoding) are the client's
        return f"multipart body: not readable ({type(error).__name__})"
    try:
        if not hasattr(form.get("file"), "filename"):
            return "file: the multipart field `file` with the file to score is missing"
        return None
    finally:
        await form.close()
