from __future__ import annotations

import asyncio
from typing import Any

from infrastructure.serving.request_guard import Message, RequestGuardMiddleware


class EchoApp:
    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def _call(
    chunks: list[bytes], headers: list[tuple[bytes, bytes]], path: str = "/classify"
) -> tuple[EchoApp, list[Message], list[tuple[str, int, float]]]:
    app = EchoApp()
    observed: list[tuple[str, int, float]] = []
    guard = RequestGuardMiddleware(
        app,
        endpoints=frozenset({"classify"}),
        max_body_bytes=10,
        observe=lambda *event: observed.append(event),
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

    scope = {"type": "http", "path": path, "headers": headers}
    asyncio.run(guard(scope, receive, send))
    return app, sent, observed


def test_small_chunked_body_reaches_the_app_whole() -> None:
    app, sent, observed = _call([b"12345", b"678"], [])
    assert app.called and sent[1]["body"] == b"12345678"
    assert observed[0][:2] == ("classify", 200)


def test_declared_oversize_is_refused_before_the_app() -> None:
    app, sent, observed = _call([b"x" * 5], [(b"content-length", b"11")])
    assert not app.called
    assert sent[0]["status"] == 413 and b"10-byte limit" in sent[1]["body"]
    assert observed[0][:2] == ("classify", 413)


def test_undeclared_oversize_is_refused_while_reading() -> None:
    app, sent, _ = _call([b"123456", b"789012"], [])
    assert not app.called and sent[0]["status"] == 413


def test_other_paths_pass_through_unobserved() -> None:
    app, sent, observed = _call([b"x" * 50], [], path="/metrics")
    assert app.called and sent[0]["status"] == 200 and observed == []
