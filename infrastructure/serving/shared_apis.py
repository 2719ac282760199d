"""The APIs every service has whatever its model kind, inherited by the service classes.

BentoML collects a service's APIs with ``dir()``, so inherited ones count. They are declared
once here; the per-kind classes add what depends on the model (request and label types).
Annotations are evaluated eagerly (no ``__future__`` import): BentoML reads them.
"""

import asyncio
import re
from pathlib import Path
from typing import Annotated

import bentoml
from bentoml.validators import ContentType
from pydantic import Field, StringConstraints

from application.inference.reload import ReloadReport
from application.registry.overview import RegistryOverview
from domain.serving.jobs import BatchJob
from infrastructure.serving.runtime import (
    ServiceStats,
    ServingRuntime,
    TrafficRequest,
    TrafficState,
)

JobId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
# The scored file comes back in the format it was sent in (CSV, TSV, JSON lines, Parquet).
JobFile = Annotated[Path, ContentType("application/octet-stream")]
TextColumn = Annotated[
    str, Field(min_length=1, max_length=200, description="text models: the column to score")
]


def uploaded_name(path: Path) -> str:
    """The client's file name: BentoML keeps an upload in a temp file named
    ``tmp<8 random characters><client's name>`` (tempfile's prefix and suffix)."""
    return re.sub(r"^tmp[a-z0-9_]{8}", "", path.name) or path.name


def caller(ctx: bentoml.Context) -> str:
    """The API key that made the request (set by the request guard), for the audit log."""
    key = getattr(ctx.request.state, "api_key", None)
    return f"api key {key.name} ({key.id})" if key is not None else "anonymous"


class RuntimeApis:
    """``runtime`` is the worker's :class:`ServingRuntime`, set by the subclass's ``__init__``."""

    runtime: ServingRuntime

    def __is_ready__(self) -> bool:
        return self.runtime.ready

    @bentoml.on_startup
    async def _await_first_load(self) -> None:
        """Holds the worker's startup until its first load ends (or ``startup_wait_s``):
        uvicorn accepts connections only after the startup hooks, so the other workers
        take the shared socket's traffic meanwhile. A worker that accepted at once (as
        before) answered 503 "still loading" to whatever the kernel handed it while a
        restarted worker loaded next to serving ones (`make chaos`). Awaited in a thread:
        the split topology's loader calls the runner through this worker's event loop."""
        await asyncio.to_thread(self.runtime.wait_ready, self.runtime.settings.startup_wait_s)

    @bentoml.api
    async def stats(self) -> ServiceStats:
        """Per variant: counts, confidence, latency, accuracy, drift (and cache); shadow;
        traffic; the last reload."""
        return await self.runtime.stats()

    @bentoml.api
    async def models(self) -> RegistryOverview:
        """This model's registered versions (metrics, aliases, gate tags) and the recent
        training runs of its experiment, from MLflow; `error` says why when the registry
        cannot be read (a Bento's image carries no MLflow)."""
        return await asyncio.to_thread(self.runtime.registry.overview)

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self, ctx: bentoml.Context) -> ReloadReport:
        """Check the aliases now and swap in any version that moved (admin key; audited)."""
        return await self.runtime.reload(caller(ctx))

    @bentoml.api(route="/admin/traffic")
    async def admin_traffic(self, body: TrafficRequest, /, ctx: bentoml.Context) -> TrafficState:
        """Set the challenger's share of live traffic in percent (admin key; audited)."""
        return self.runtime.set_traffic(body, caller(ctx))

    @bentoml.api(route="/jobs/submit")
    async def jobs_submit(
        self, file: Path, ctx: bentoml.Context, text_column: TextColumn = "text"
    ) -> BatchJob:
        """Queue a file (.csv, .tsv, .jsonl, .parquet; multipart field `file`) for scoring
        in the background: 202 with the job; poll `jobs/status`, then fetch `jobs/result`
        and `jobs/rejects`. The file is checked first (format, the columns the model
        reads): 400 naming the problem."""
        job = await self.runtime.submit_job(file, uploaded_name(file), text_column)
        ctx.response.status_code = 202
        return job

    @bentoml.api(route="/jobs/status")
    async def jobs_status(self, job_id: JobId) -> BatchJob:
        """A batch job's status and progress (rows done, scored, rejected)."""
        return self.runtime.job(job_id)

    @bentoml.api(route="/jobs/result")
    async def jobs_result(self, job_id: JobId) -> JobFile:
        """The scored file of a completed job (409 until then)."""
        return self.runtime.job_file(job_id, rejects=False)

    @bentoml.api(route="/jobs/rejects")
    async def jobs_rejects(self, job_id: JobId) -> JobFile:
        """The rows of a completed job that failed validation, with the reason (409 until
        then)."""
        return self.runtime.job_file(job_id, rejects=True)
