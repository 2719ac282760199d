"""The canary's view of a running service over HTTP: its admin API and its `stats`."""

from __future__ import annotations

import time
from typing import Any

import httpx

from domain.serving.canary import VariantFigures
from shared.errors import MlopsError

# Error kinds a model can cause; 4xx (bad input, overload at the door) say nothing about it.
SERVER_ERROR_KINDS = ("internal", "unavailable", "timeout")


class ServiceUnreachableError(MlopsError):
    """The service did not answer the canary's admin or stats call."""


class HttpCanaryTarget:
    def __init__(
        self,
        url: str,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
        api_key: str | None = None,
    ) -> None:
        """``api_key``: an admin key (the admin API refuses anything else)."""
        self._url = url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout_s)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            reply = self._client.post(f"{self._url}{path}", json=body or {}, headers=self._headers)
        except httpx.HTTPError as error:
            raise ServiceUnreachableError(f"{self._url}{path}: {error}") from error
        if reply.status_code != 200:
            raise ServiceUnreachableError(f"{self._url}{path}: {reply.status_code} {reply.text}")
        return reply.json()

    def set_challenger_weight(self, weight: float) -> None:
        self._post("/admin/traffic", {"challenger_weight": weight})

    def reload(self) -> Any:
        return self._post("/admin/reload")

    def figures(self) -> tuple[VariantFigures | None, VariantFigures | None]:
        stats = self._post("/stats")
        found: dict[str, VariantFigures] = {}
        for entry in stats["variants"]:
            variant = entry["stats"]
            found[entry["variant"]] = VariantFigures(
                version=entry["model_version"],
                requests=int(variant["latency"]["count"]),
                server_errors=sum(int(variant["errors"].get(k, 0)) for k in SERVER_ERROR_KINDS),
                p99_ms=variant["latency"]["p99_ms"],
                labelled=int(variant["window_labelled"]),
                correct=int(variant["window_correct"]),
            )
        return found.get("champion"), found.get("challenger")


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
