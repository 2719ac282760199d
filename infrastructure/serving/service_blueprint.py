"""What the service builders hand to their entry modules, and state shared within a worker.

The builders (``tabular_service``, ``text_service``) create the service class from settings;
the entry module applies ``bentoml.service`` because BentoML takes a service's import path
from the module that decorated it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import bentoml
from bentoml.validators import ContentType
from pydantic import StringConstraints

from domain.security.api_keys import Role
from infrastructure.config.settings import MlopsSettings, ServingSettings
from infrastructure.monitoring.prometheus_metrics import (
    PrometheusInFlightLimit,
    PrometheusRequestsInFlight,
)
from infrastructure.security.json_key_store import JsonKeyStore
from infrastructure.serving.direct_api import DirectApis
from infrastructure.serving.openapi import COMMON_ERRORS, error_body, service_openapi
from infrastructure.serving.rate_limit import KeyRateLimiter
from infrastructure.serving.request_guard import KeyAuthorizer, RequestGuardMiddleware
from infrastructure.serving.runtime import ServingRuntime
from infrastructure.serving.web_ui import mount_web_ui

ENDPOINTS = (
    "classify",
    "predict",
    "metadata",
    "feedback",
    "stats",
    "models",
    "admin/reload",
    "admin/traffic",
    "jobs/submit",
    "jobs/status",
    "jobs/result",
    "jobs/rejects",
)
PREDICTION_ENDPOINTS = frozenset({"classify", "predict"})
# Takes a multipart file upload (every other API takes JSON), with its own size limit.
UPLOAD_ENDPOINT = "jobs/submit"
# APIs whose success is not 200 (a job is accepted, not done).
SUCCESS_STATUS = {"jobs_submit": 202}

Body = TypeVar("Body")
# A declared content type spares BentoML from generating the return type's JSON schema on
# every response to find one (a third of the event loop's time under load, when profiled).
JsonResponse = Annotated[Body, ContentType("application/json")]
# What `classify`/`predict` hand out (uuid4 hex), so the schema tells clients the exact form.
RequestId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


def class_label(classes: Sequence[str]) -> Any:
    """``feedback``'s label type: one of the model's classes, listed in the schema."""
    return Literal[tuple(classes)]


# Which role each endpoint needs: admin endpoints always, the others when the settings say
# every endpoint needs a key (REQUIRE_API_KEY).
ADMIN_ENDPOINTS = frozenset({"admin/reload", "admin/traffic"})
KEYS = "api_keys.json"  # under MLOPS_HOME unless API_KEYS_FILE says otherwise
AUTH_ERRORS = (401, 403)


def endpoint_roles(settings: ServingSettings) -> dict[str, Role]:
    roles = {endpoint: Role.ADMIN for endpoint in ADMIN_ENDPOINTS}
    if settings.require_api_key:
        roles.update({e: Role.PREDICT for e in ENDPOINTS if e not in ADMIN_ENDPOINTS})
    return roles


def endpoint_errors(settings: ServingSettings) -> dict[str, tuple[int, ...]]:
    """The error statuses each API can answer with (declared in the OpenAPI document)."""
    errors = {
        "classify": COMMON_ERRORS,
        "predict": COMMON_ERRORS,
        "metadata": COMMON_ERRORS,
        "feedback": (*COMMON_ERRORS, 404),
        "stats": COMMON_ERRORS,
        "models": COMMON_ERRORS,
        "admin/reload": COMMON_ERRORS,
        "admin/traffic": COMMON_ERRORS,
        "jobs/submit": COMMON_ERRORS,
        "jobs/status": (*COMMON_ERRORS, 404),
        "jobs/result": (*COMMON_ERRORS, 404, 409),
        "jobs/rejects": (*COMMON_ERRORS, 404, 409),
    }
    protected = endpoint_roles(settings)
    # OpenAPI names APIs by function: the admin routes' functions are admin_reload/_traffic.
    return {
        endpoint.replace("/", "_"): tuple(sorted({*statuses, *AUTH_ERRORS}))
        if endpoint in protected
        else statuses
        for endpoint, statuses in errors.items()
    }


@dataclass
class ServiceState:
    """Shared by the service instance and its middleware within one worker process."""

    runtime: ServingRuntime | None = None
    # The service instance BentoML built in this worker (the direct path calls its APIs).
    instance: Any = None

    def unavailable(self) -> str | None:
        """Why prediction requests cannot be served yet, or None once the champion is in."""
        if self.runtime is None:
            return "the service is starting"
        if self.runtime.ready:
            return None
        return self.runtime.startup_error or "the model is still loading"

    def observe_request(
        self, endpoint: str, status: int, seconds: float, variant: str | None
    ) -> None:
        # BentoML builds the service instance (and so the runtime) before serving requests.
        if self.runtime is not None:
            self.runtime.observe_request(endpoint, status, seconds, variant)


# BentoML's timeout when its configuration gives none (TIMEOUT_S=0): its schema requires one.
BENTOML_DEFAULT_TIMEOUT_S = 60.0


class GuardFirstService(bentoml.Service[Any]):  # type: ignore[misc]  # mypy sees bentoml as Any
    """A BentoML service whose request guard runs before BentoML's timeout and OpenTelemetry
    middlewares when the prediction APIs take the direct path.

    BentoML puts a service's own middlewares after its built-in ones. For the requests the
    guard answers itself, those two did nothing useful (the guard has its own timeout, and
    tracing is off whenever the direct path is on) and cost about a fifth of the worker's
    CPU per request: the timeout middleware starts a task and a 60 s timer per request
    (``make bench-overhead``'s zero-cost model: 328-347 us per request with it skipped,
    404-442 us with it, three alternating runs). The access log and BentoML's request
    metrics, when switched on, stay in front of the guard.
    """

    def to_asgi(self, is_main: bool = True) -> Any:
        app = super().to_asgi(is_main)
        app.user_middleware = guard_first(app.user_middleware)
        return app


def guard_first(middleware: list[Any]) -> list[Any]:
    """Starlette's middleware list with a direct-path guard moved in front of BentoML's
    timeout and OpenTelemetry middlewares (unchanged without one)."""
    from bentoml._internal.server.http.traffic import TimeoutMiddleware
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    at = next(
        (
            i
            for i, m in enumerate(middleware)
            if m.cls is RequestGuardMiddleware and m.kwargs.get("direct") is not None
        ),
        None,
    )
    if at is None:
        return middleware
    skipped = (TimeoutMiddleware, OpenTelemetryMiddleware)
    before = middleware[:at]
    return [
        *(m for m in before if m.cls not in skipped),
        middleware[at],
        *(m for m in before if m.cls in skipped),
        *middleware[at + 1 :],
    ]


@dataclass(frozen=True)
class ServiceBlueprint:
    """Everything ``bentoml.service`` needs for one service class."""

    cls: type
    config: dict[str, Any]
    middleware: tuple[type, dict[str, Any]]
    errors: dict[str, tuple[int, ...]]
    ui: bool = True
    # Set when the prediction APIs take the direct path (settings.direct_api, no tracing).
    direct_state: ServiceState | None = None

    def __post_init__(self) -> None:
        # BentoML calls inspect.signature() on an API's function at every call (to fill
        # Field defaults); with eagerly evaluated annotations that was a tenth of the event
        # loop's time under load, as profiled. A stored __signature__ makes it a lookup.
        for name in dir(self.cls):  # inherited APIs too (BentoML collects them with dir())
            member = getattr(self.cls, name)
            function = getattr(member, "func", None)
            if callable(function) and getattr(member, "input_spec", None) is not None:
                function.__signature__ = inspect.signature(function)

    def attach(self, service: Any) -> Any:
        """The request guard middleware, and the web UI at /ui unless settings turn it off."""
        if self.ui:
            mount_web_ui(service)
        middleware_cls, options = self.middleware
        errors = self.errors
        if self.direct_state is not None:
            state = self.direct_state
            direct = DirectApis(service, lambda: state.instance, sorted(PREDICTION_ENDPOINTS))
            options = {**options, "direct": direct.answer, "direct_endpoints": direct.endpoints}
        service.add_asgi_middleware(
            middleware_cls,
            **options,
            error_body=error_body,
            openapi=lambda: service_openapi(service, errors, SUCCESS_STATUS),
            metrics=prometheus_exposition,
            in_flight_gauge=PrometheusRequestsInFlight(service.name),
            in_flight_limit_gauge=PrometheusInFlightLimit(service.name),
            timeout_s=self.config.get("traffic", {}).get("timeout", BENTOML_DEFAULT_TIMEOUT_S),
        )
        return service


def prometheus_exposition() -> tuple[bytes, str]:
    """What BentoML's ``/metrics`` route answers: every worker's series, merged."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    client = BentoMLContainer.metrics_client.get()
    exposition: bytes = client.generate_latest()  # type: ignore[no-untyped-call]
    return exposition, client.CONTENT_TYPE_LATEST


def service_config(
    name: str, settings: ServingSettings, resources: dict[str, Any] | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "service_class": GuardFirstService,
        "name": name,
        "workers": settings.workers,
        # Without the key BentoML's timeout is its default, 60 s (its middleware is always
        # installed). Its concurrency limit is not used: it sat outside the request guard,
        # so its 429s had no Retry-After (seen under overload); the guard enforces
        # MAX_CONCURRENCY itself.
        "traffic": {"timeout": settings.timeout_s} if settings.timeout_s else {},
        "logging": {"access": {"enabled": settings.access_log}},
        # Off by default: its middleware costs a third of the service's own CPU per request
        # (``make bench-overhead``); the request guard serves /metrics and requests in flight.
        "metrics": {"enabled": settings.request_metrics},
    }
    if not settings.tracing:
        # Without an exporter BentoML's OpenTelemetry middleware builds spans for every
        # message of every request and drops them: about a fifth of the event loop's time
        # under load, as profiled. Excluded routes skip it entirely.
        config["tracing"] = {"excluded_urls": [f"/{endpoint}" for endpoint in ENDPOINTS]}
    if resources:
        config["resources"] = resources
    return config


def guard_middleware(
    endpoints: tuple[str, ...], settings: ServingSettings, state: ServiceState
) -> tuple[type, dict[str, Any]]:
    keys = JsonKeyStore(
        Path(settings.api_keys_file) if settings.api_keys_file else MlopsSettings().home / KEYS
    )
    prefix = settings.model_config.get("env_prefix", "")
    return (
        RequestGuardMiddleware,
        {
            "authorize": KeyAuthorizer(keys.keys, endpoint_roles(settings)),
            "endpoints": frozenset(endpoints),
            "max_body_bytes": settings.max_body_bytes,
            "body_timeout_s": settings.body_timeout_s,
            "max_in_flight": settings.max_concurrency,
            "in_flight_latency_bound_s": settings.max_latency_ms / 1000.0
            if settings.adaptive_concurrency
            else 0.0,
            "observe": state.observe_request,
            "limit_setting": f"{prefix}MAX_BODY_BYTES",
            "unavailable": state.unavailable,
            "prediction_endpoints": PREDICTION_ENDPOINTS,
            "upload_endpoints": {UPLOAD_ENDPOINT: settings.jobs_max_bytes},
            "rate_limit": KeyRateLimiter(
                settings.rate_limit_per_key,
                settings.rate_limit_burst or math.ceil(settings.rate_limit_per_key),
            )
            if settings.rate_limit_per_key
            else None,
            "rate_limited_endpoints": PREDICTION_ENDPOINTS | {"feedback", UPLOAD_ENDPOINT},
            "rate_setting": f"{prefix}RATE_LIMIT_PER_KEY",
        },
    )


def direct_state(settings: ServingSettings, state: ServiceState) -> ServiceState | None:
    """The state the direct path reads, when settings allow it (tracing needs the full path)."""
    return state if settings.direct_api and not settings.tracing else None


def serving_limits(settings: ServingSettings) -> dict[str, Any]:
    return {
        "batching": settings.batching,
        "max_batch_size": settings.max_batch_size,
        "max_instances": settings.max_instances,
        "max_body_bytes": settings.max_body_bytes,
        "drift": {**settings.drift_config().model_dump(), "window": settings.drift_window},
        "variants": [variant.model_dump(mode="json") for variant in settings.variants()],
        "reload_interval_s": settings.reload_interval_s,
        "routing_header": settings.routing_header,
    }
