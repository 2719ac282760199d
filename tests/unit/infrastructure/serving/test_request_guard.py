from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from infrastructure.serving.openapi import error_body
from infrastructure.serving.request_guard import Message, RequestGuardMiddleware


class EchoApp:
    def __init__(self, status: int = 200, content_type: bytes = b"application/json") -> None:
        self.called = False
        self.status = status
        self.content_type = content_type

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(b"content-type", self.content_type), (b"allow", b"POST")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        # Sent in two parts, as streaming responses are.
        await send({"type": "http.response.body", "body": body[:3], "more_body": True})
        await send({"type": "http.response.body", "body": body[3:]})


def _call(
    chunks: list[bytes],
    headers: list[tuple[bytes, bytes]],
    path: str = "/classify",
    app: EchoApp | None = None,
    method: str = "POST",
    **options: Any,
) -> tuple[EchoApp, list[Message], list[tuple[str, int, float]]]:
    app = app or EchoApp()
    observed: list[tuple[str, int, float]] = []
    guard = RequestGuardMiddleware(
        app,
        endpoints=frozenset({"classify"}),
        max_body_bytes=10,
        observe=lambda *event: observed.append(event),
        error_body=error_body,
        openapi=lambda: {"openapi": "3.1.0", "paths": {}},
        **options,
    )
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": headers, "method": method}
    asyncio.run(guard(scope, receive, send))
    return app, sent, observed


def test_small_chunked_body_reaches_the_app_whole() -> None:
    app, sent, observed = _call([b"12345", b"678"], [])
    assert app.called and b"".join(m.get("body", b"") for m in sent[1:]) == b"12345678"
    assert observed[0][:2] == ("classify", 200)


def test_declared_oversize_is_refused_before_the_app() -> None:
    app, sent, observed = _call([b"x" * 5], [(b"content-length", b"11")])
    assert not app.called
    assert sent[0]["status"] == 413
    body = json.loads(sent[1]["body"])
    assert "10-byte limit" in body["error"] and body["detail"][0]["type"] == "payload_too_large"
    assert observed[0][:2] == ("classify", 413)


def test_undeclared_oversize_is_refused_while_reading() -> None:
    app, sent, _ = _call([b"123456", b"789012"], [])
    assert not app.called and sent[0]["status"] == 413


def test_other_paths_pass_through_unobserved() -> None:
    app, sent, observed = _call([b"x" * 50], [], path="/metrics")
    assert app.called and sent[0]["status"] == 200 and observed == []


def _json_body(sent: list[Message]) -> dict[str, object]:
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(body)).encode()
    parsed: dict[str, object] = json.loads(body)
    return parsed


def test_error_bodies_of_any_layer_get_the_declared_shape() -> None:
    # Starlette's plain-text 405 keeps its status and Allow header, with a JSON body.
    plain = EchoApp(status=405, content_type=b"text/plain")
    _, sent, observed = _call([b"no body"], [], app=plain)
    assert sent[0]["status"] == 405 and (b"allow", b"POST") in sent[0]["headers"]
    assert _json_body(sent) == {
        "error": "no body",
        "detail": [{"loc": [], "msg": "no body", "type": "method_not_allowed"}],
    }
    assert observed[0][:2] == ("classify", 405)


def test_bentoml_error_arrays_become_details_naming_the_field() -> None:
    raw = b'[{"error":"label: unknown class \'zz\'"}]'
    assert json.loads(error_body(400, raw)) == {
        "error": "label: unknown class 'zz'",
        "detail": [
            {"loc": ["body", "label"], "msg": "label: unknown class 'zz'", "type": "invalid_input"}
        ],
    }


def test_pydantic_errors_keep_loc_and_drop_the_echoed_input() -> None:
    raw = json.dumps(
        {
            "error": "1 validation error for Input",
            "detail": [
                {
                    "type": "missing",
                    "loc": ["rows", 0, 1],
                    "msg": "Field required",
                    "input": "x" * 999,
                }
            ],
        }
    ).encode()
    body = json.loads(error_body(400, raw))
    assert body["detail"] == [{"loc": ["rows", 0, 1], "msg": "Field required", "type": "missing"}]


def test_a_body_that_is_not_json_is_refused_with_415_before_the_app() -> None:
    app, sent, observed = _call([b"--x--"], [(b"content-type", b"multipart/form-data")])
    assert not app.called and sent[0]["status"] == 415
    body = _json_body(sent)
    assert "multipart/form-data" in str(body["error"])
    assert observed[0][:2] == ("classify", 415)
    json_with_charset = [(b"content-type", b"application/json; charset=utf-8")]
    assert _call([b"{}"], json_with_charset)[0].called


def test_the_openapi_document_is_served_by_the_guard() -> None:
    app, sent, _ = _call([], [], path="/docs.json", method="GET")
    assert not app.called and json.loads(sent[1]["body"]) == {"openapi": "3.1.0", "paths": {}}


def test_shed_and_overloaded_answers_tell_when_to_retry() -> None:
    for status in (429, 503):
        _, sent, _ = _call([b"{}"], [], app=EchoApp(status=status))
        assert sent[0]["status"] == status
        assert (b"retry-after", b"1") in sent[0]["headers"]
    _, sent, _ = _call([b"{}"], [], app=EchoApp(status=400))
    assert all(name != b"retry-after" for name, _ in sent[0]["headers"])


def test_the_openapi_document_declares_retry_after_on_429_and_503() -> None:
    from infrastructure.serving.openapi import error_response_spec

    for status in (429, 503):
        assert "Retry-After" in error_response_spec(status)["headers"]
    assert "headers" not in error_response_spec(400)


def test_a_body_trickled_past_the_timeout_gets_408_and_the_app_never_runs() -> None:
    app = EchoApp()
    observed: list[tuple[str, int, float]] = []
    guard = RequestGuardMiddleware(
        app,
        endpoints=frozenset({"classify"}),
        max_body_bytes=1000,
        observe=lambda *event: observed.append(event),
        error_body=error_body,
        body_timeout_s=0.2,
    )
    sent: list[Message] = []

    async def trickle() -> Message:
        await asyncio.sleep(0.15)  # one byte at a time, each in time, the whole too slow
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/classify", "headers": [], "method": "POST"}
    asyncio.run(guard(scope, trickle, send))
    assert not app.called
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert "not received within 0.2 s" in json.loads(sent[1]["body"])["error"]
    assert observed[0][:2] == ("classify", 408)


def test_requests_beyond_the_in_flight_limit_get_429_with_retry_after_at_once() -> None:
    guard, hold, (one, release) = _held_guard(max_in_flight=2)
    hold.set()

    async def scenario() -> list[list[Message]]:
        held = [asyncio.create_task(one()) for _ in range(2)]
        await asyncio.sleep(0.05)
        refused = await asyncio.wait_for(one(), 1.0)  # answered while the two are held
        release.set()
        return [refused, *await asyncio.gather(*held)]

    refused, first, second = asyncio.run(scenario())
    assert refused[0]["status"] == 429 and (b"retry-after", b"1") in refused[0]["headers"]
    assert "MAX_CONCURRENCY" in json.loads(refused[1]["body"])["error"]
    assert first[0]["status"] == second[0]["status"] == 200
    assert guard._in_flight == 0


class RecordingGauge:
    def __init__(self) -> None:
        self.changes: list[tuple[str, int]] = []

    def add(self, endpoint: str, change: int) -> None:
        self.changes.append((endpoint, change))


def _guarded(app: EchoApp, gauge: RecordingGauge, path: str, method: str = "GET") -> list[Message]:
    _, sent, _ = _call(
        [b"{}"],
        [],
        path=path,
        app=app,
        method=method,
        metrics=lambda: (b"# HELP x\n", "text/plain; version=0.0.4"),
        in_flight_gauge=gauge,
    )
    return sent


def test_metrics_are_served_by_the_guard() -> None:
    """/metrics exists with BentoML's request metrics off (they remove its route)."""
    app, gauge = EchoApp(), RecordingGauge()
    sent = _guarded(app, gauge, "/metrics")
    assert not app.called and sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"content-type"] == b"text/plain; version=0.0.4"
    assert sent[1]["body"] == b"# HELP x\n" and gauge.changes == []


def test_requests_in_flight_rise_and_fall_around_each_api_request() -> None:
    app, gauge = EchoApp(), RecordingGauge()
    _guarded(app, gauge, "/classify", method="POST")
    assert app.called and gauge.changes == [("classify", 1), ("classify", -1)]
    _guarded(app, gauge, "/readyz")  # not an API: not counted
    assert gauge.changes == [("classify", 1), ("classify", -1)]


def _slow_reader_guard(body_timeout_s: float) -> RequestGuardMiddleware:
    return RequestGuardMiddleware(
        EchoApp(),
        endpoints=frozenset({"classify"}),
        max_body_bytes=1000,
        observe=lambda *event: None,
        body_timeout_s=body_timeout_s,
    )


async def _stalled() -> Message:
    """A client that never sends its body."""
    await asyncio.sleep(3600)
    return {"type": "http.disconnect"}


def _cancelled_midway(guard: RequestGuardMiddleware, receive: Any) -> list[Message]:
    """What a request cancelled from elsewhere (the client left, shutdown) had sent; fails
    unless the cancellation propagated."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def scenario() -> None:
        scope = {"type": "http", "path": "/classify", "headers": [], "method": "POST"}
        request = asyncio.ensure_future(guard(scope, receive, send))
        await asyncio.sleep(0.05)
        request.cancel()
        try:
            await request
        except asyncio.CancelledError:
            return
        raise AssertionError("the cancellation was swallowed")

    asyncio.run(scenario())
    return sent


def test_a_cancelled_request_is_not_mistaken_for_a_slow_body() -> None:
    """Only the guard's own deadline becomes a 408."""
    guard = _slow_reader_guard(body_timeout_s=5.0)
    assert _cancelled_midway(guard, _stalled) == []
    assert not guard._deadlines._due, "the deadline outlived its request"


def test_body_deadlines_fire_on_time_and_the_watchdog_stops_when_idle() -> None:
    guard = _slow_reader_guard(body_timeout_s=0.3)
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def scenario() -> float:
        scope = {"type": "http", "path": "/classify", "headers": [], "method": "POST"}
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(guard(dict(scope), _stalled, send) for _ in range(3)))
        took = asyncio.get_running_loop().time() - started
        watchdog = guard._deadlines._watchdog
        await asyncio.sleep(0.1)  # one tick (0.03 s) and more
        assert watchdog is not None and watchdog.done(), "the watchdog outlived its requests"
        return took

    took = asyncio.run(scenario())
    assert statuses == [408, 408, 408]
    assert 0.3 <= took < 0.3 + 0.5  # the deadline, one tick late at most (plus a slow CI)


def test_metrics_answer_head_and_refuse_other_methods_as_bentoml_did() -> None:
    gauge = RecordingGauge()
    head = _guarded(EchoApp(), gauge, "/metrics", method="HEAD")
    assert head[0]["status"] == 200 and head[1]["body"] == b""
    assert dict(head[0]["headers"])[b"content-length"] == str(len(b"# HELP x\n")).encode()
    refused = _guarded(EchoApp(), gauge, "/metrics", method="TRACE")
    assert refused[0]["status"] == 405 and dict(refused[0]["headers"])[b"allow"] == b"GET, HEAD"
    assert refused[1]["body"] == b"Method Not Allowed"


def test_a_direct_answer_past_the_timeout_gets_504_in_the_error_shape() -> None:
    """The direct path is not under BentoML's timeout middleware, so the guard gives the
    504 itself; an answer in time is untouched and disarms its deadline."""

    async def direct(endpoint: str, scope: Any, body: bytes) -> Any:
        await asyncio.sleep(0.0 if body == b"{}" else 3600)
        return 200, [(b"content-type", b"application/json")], b'{"ok": true}'

    options: dict[str, Any] = {
        "direct": direct,
        "direct_endpoints": frozenset({"classify"}),
        "timeout_s": 0.2,
    }
    app, late, observed = _call([b"[]"], [], **options)
    assert late[0]["status"] == 504 and not app.called
    assert _json_body(late)["error"] == "not answered within 0.2 s (the service timeout)"
    assert [event[1] for event in observed] == [504]
    _, timely, _ = _call([b"{}"], [], **options)
    assert timely[0]["status"] == 200 and timely[1]["body"] == b'{"ok": true}'


def test_direct_answers_are_observed_with_their_variant_and_errors_get_the_shape() -> None:
    """A direct success goes out as the direct path wrote it, and is observed with its
    status and variant; a direct error is rewritten into the declared shape."""

    async def direct(endpoint: str, scope: Any, body: bytes) -> Any:
        if body == b"{}":
            headers = [(b"content-type", b"application/json"), (b"x-model-variant", b"challenger")]
            return 200, headers, b'{"ok": true}'
        return 409, [(b"content-type", b"application/json")], b'[{"error": "busy"}]'

    options: dict[str, Any] = {"direct": direct, "direct_endpoints": frozenset({"classify"})}
    app, sent, observed = _call([b"{}"], [], **options)
    assert not app.called and sent[0]["status"] == 200 and sent[1]["body"] == b'{"ok": true}'
    assert [(e[1], e[3]) for e in observed] == [(200, "challenger")]  # type: ignore[misc]
    _, refused, observed = _call([b"[]"], [], **options)
    assert refused[0]["status"] == 409 and _json_body(refused)["error"] == "busy"
    assert [event[1] for event in observed] == [409]


def test_a_cancelled_direct_answer_is_not_mistaken_for_a_timeout() -> None:
    async def direct(endpoint: str, scope: Any, body: bytes) -> Any:
        await asyncio.sleep(3600)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    guard = RequestGuardMiddleware(
        EchoApp(),
        endpoints=frozenset({"classify"}),
        max_body_bytes=10,
        observe=lambda *event: None,
        error_body=error_body,
        direct=direct,
        direct_endpoints=frozenset({"classify"}),
        timeout_s=5.0,
    )
    assert _cancelled_midway(guard, receive) == []
    assert not guard._answer_deadlines._due, "the deadline outlived its request"


def _held_guard(
    status: int = 200, **options: Any
) -> tuple[RequestGuardMiddleware, asyncio.Event, Any]:
    """A guard over an app that answers ``status`` at once, or holds every request while
    ``hold`` is set, and a coroutine function that sends one request through it."""
    hold = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if hold.is_set():
            await release.wait()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    guard = RequestGuardMiddleware(
        app,
        endpoints=frozenset({"classify"}),
        max_body_bytes=1000,
        observe=lambda *event: None,
        error_body=error_body,
        **options,
    )

    async def one() -> list[Message]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "path": "/classify", "headers": [], "method": "POST"}
        await guard(scope, receive, send)
        return sent

    return guard, hold, (one, release)


@pytest.mark.parametrize("adaptive", [True, False])
def test_a_worker_that_answered_fast_takes_more_than_max_concurrency_in_flight(
    adaptive: bool,
) -> None:
    # Given a guard with MAX_CONCURRENCY 4 whose worker answered about 200 requests/s
    # for a second (with a 1 s latency bound when adaptive)
    guard, hold, (one, release) = _held_guard(
        max_in_flight=4, in_flight_latency_bound_s=1.0 if adaptive else 0.0
    )

    async def scenario() -> list[int]:
        started = time.perf_counter()
        while time.perf_counter() - started < 1.05:
            await one()
            await asyncio.sleep(0.005)
        await one()  # closes the measured window
        # When 20 requests are held in flight, and one more arrives
        hold.set()
        held = [asyncio.create_task(one()) for _ in range(20)]
        await asyncio.sleep(0.05)
        extra = await asyncio.wait_for(one(), 1.0) if not adaptive else None
        release.set()
        answers = await asyncio.gather(*held)
        statuses = [sent[0]["status"] for sent in answers]
        return statuses + ([extra[0]["status"]] if extra else [])

    statuses = asyncio.run(scenario())
    if adaptive:
        # Then all 20 were taken in: the worker showed it answers them within the bound
        assert guard._limit.rate > 40
        assert statuses == [200] * 20
    else:
        # Then the fixed count refused all but 4 of them
        assert statuses.count(200) == 4 and statuses.count(429) == 17
    assert guard._in_flight == 0


def test_sheds_do_not_count_as_answers_for_the_in_flight_limit() -> None:
    # Given a worker whose every answer is a shed (429)
    guard, _, (one, _) = _held_guard(429, max_in_flight=4, in_flight_latency_bound_s=1.0)

    # When it sheds for over a second
    async def scenario() -> None:
        started = time.perf_counter()
        while time.perf_counter() - started < 1.05:
            await one()
            await asyncio.sleep(0.005)
        await one()

    asyncio.run(scenario())
    # Then its measured rate stays at zero, and the limit at MAX_CONCURRENCY
    assert guard._limit.rate == 0.0 and guard._limit.current() == 4
