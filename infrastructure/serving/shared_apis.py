"""The APIs every service has whatever its model kind, inherited by the service classes.

BentoML collects a service's APIs with ``dir()``, so inherited ones count. They are declared
once here; the per-kind classes add what depends on the model (request and label types).
Annotations are evaluated eagerly (no ``__future__`` import): BentoML reads them.
"""

import bentoml

from application.inference.reload import ReloadReport
from infrastructure.serving.runtime import (
    ServiceStats,
    ServingRuntime,
    TrafficRequest,
    TrafficState,
)


def caller(ctx: bentoml.Context) -> str:
    """The API key that made the request (set by the request guard), for the audit log."""
    key = getattr(ctx.request.state, "api_key", None)
    return f"api key {key.name} ({key.id})" if key is not None else "anonymous"


class RuntimeApis:
    """``runtime`` is the worker's :class:`ServingRuntime`, set by the subclass's ``__init__``."""

    runtime: ServingRuntime

    def __is_ready__(self) -> bool:
        return self.runtime.ready

    @bentoml.api
    async def stats(self) -> ServiceStats:
        """Per variant: counts, confidence, latency, accuracy, drift (and cache); shadow;
        traffic; the last reload."""
        return await self.runtime.stats()

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self, ctx: bentoml.Context) -> ReloadReport:
        """Check the aliases now and swap in any version that moved (admin key; audited)."""
        return await self.runtime.reload(caller(ctx))

    @bentoml.api(route="/admin/traffic")
    async def admin_traffic(self, body: TrafficRequest, /, ctx: bentoml.Context) -> TrafficState:
        """Set the challenger's share of live traffic in percent (admin key; audited)."""
        return self.runtime.set_traffic(body, caller(ctx))
