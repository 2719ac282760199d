"""ASGI middleware in front of a service's API routes: body-size limit and request outcomes.

BentoML turns any exception raised while it reads a body into a 500, so an oversized body
must be refused here, before the body reaches BentoML. The body is read once (up to the
limit) and replayed to the app. Every answered API request is reported with its status and
time, which is how rejected requests (400, 413, 429, 503) reach the error metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RequestObserver = Callable[[str, int, float], None]


class RequestGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        endpoints: frozenset[str],
        max_body_bytes: int,
        observe: RequestObserver,
        limit_setting: str = "MLOPS_SERVE_MAX_BODY_BYTES",
    ) -> None:
        self.app = app
        self.endpoints = endpoints
        self.max_body_bytes = max_body_bytes
        self.observe = observe
        self.limit_setting = limit_setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = scope.get("path", "").strip("/") if scope["type"] == "http" else ""
        if endpoint not in self.endpoints:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                status = 413
                await self._payload_too_large(send)
                return

            delivered = False

            async def replay() -> Message:
                nonlocal delivered
                if delivered:
                    return await receive()
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, observed_send)
        finally:
            self.observe(endpoint, status, time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None once it exceeds the limit (declared or actual size)."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
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
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _payload_too_large(self, send: Send) -> None:
        payload = json.dumps(
            {
                "error": f"request body exceeds the {self.max_body_bytes}-byte limit "
                f"(setting {self.limit_setting})"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
