"""What one service worker runs, whatever the model kind: pool, routing, batching, monitors,
reloader and watcher. The Bento service classes are thin and delegate every API here.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import Any

from bentoml.exceptions import BentoMLException, InvalidArgument, NotFound, ServiceUnavailable
from pydantic import BaseModel, ConfigDict, Field

from application.inference.batch_jobs import BatchJobRunner, new_job
from application.inference.model_pool import ModelPool
from application.inference.reload import AliasWatcher, Reloader, ReloadReport
from application.inference.serve_predictions import PredictionService
from application.monitoring.prediction_recorder import PredictionRecorder
from application.monitoring.serving_monitor import FeedbackOutcome, ServingMonitor
from application.monitoring.variant_monitors import ShadowStats, VariantMonitors, VariantStats
from domain.monitoring.prediction_log import LogKey
from domain.ports import ModelLoader, ModelSource
from domain.serving.jobs import BatchJob, JobStatus
from domain.serving.model import LoadedModel
from domain.serving.prediction import Prediction
from domain.serving.variants import CHALLENGER, TrafficSplit, VariantName
from infrastructure.audit.jsonl_audit_log import JsonlAuditLog
from infrastructure.batch.job_files import FolderJobFiles
from infrastructure.batch.sqlite_job_store import SqliteJobStore
from infrastructure.config.settings import MlopsSettings, ServingSettings
from infrastructure.monitoring.prediction_logs import open_prediction_log
from infrastructure.monitoring.prometheus_metrics import (
    PrometheusServiceMetrics,
    PrometheusServingMetrics,
)
from infrastructure.serving.registry_view import ServiceRegistryView
from shared.errors import (
    ConfigError,
    InvalidInputError,
    OverloadedError,
    ShedError,
    UnknownPredictionError,
)

logger = logging.getLogger(__name__)


class TooManyRequests(BentoMLException):
    """Shed on arrival (see ``MicroBatcher``); the guard middleware adds ``Retry-After``."""

    error_code = HTTPStatus.TOO_MANY_REQUESTS


class JobNotFinished(BentoMLException):
    """A job's files were asked for before it completed."""

    error_code = HTTPStatus.CONFLICT


class UploadTooLarge(BentoMLException):
    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


VARIANT_HEADER = "x-model-variant"
VERSION_HEADER = "x-model-version"


class FeedbackAnswer(FeedbackOutcome):
    """The outcome, and which variant and version answered the request."""

    variant: str
    model_version: str


class TrafficRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    challenger_weight: float = Field(
        ge=0.0, le=100.0, strict=True, description="percent of live traffic"
    )


class TrafficState(BaseModel):
    model_config = ConfigDict(frozen=True)

    challenger_weight: float
    routing_header: str
    serving: dict[str, str] = Field(description="variant -> model version")


class ServiceStats(BaseModel):
    """`stats`: per variant (with its version), shadow agreement, traffic and reloads."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    variants: list[VariantStats]
    shadow: ShadowStats
    traffic: TrafficState
    last_reload: ReloadReport | None
    reload_failures: int
    swaps: int


class ServingRuntime:
    def __init__(
        self,
        settings: ServingSettings,
        loader: ModelLoader,
        source: ModelSource,
        endpoints: tuple[str, ...],
    ) -> None:
        self.settings = settings
        self._endpoints = endpoints
        self.pool = ModelPool()
        self.split = TrafficSplit(settings.challenger_weight)
        self.metrics = PrometheusServiceMetrics(settings.model_name)
        mlops = MlopsSettings()
        home = mlops.home
        self.recorder = PredictionRecorder(
            open_prediction_log(settings.prediction_log_url, home),
            capacity=settings.prediction_log_capacity,
            sample=settings.prediction_log_sample,
            retention_s=settings.prediction_log_retention_days * 86_400,
            on_dropped=self.metrics.log_dropped,
            on_written=self.metrics.log_written,
            spool=home / "prediction-spool" / settings.model_name,
        )
        self.recorder.start()
        self.audit = JsonlAuditLog(home / "audit.jsonl")
        self.monitors = VariantMonitors(self._new_monitor, self.recorder)
        # One thread scores at a time (the model's own kernels use the cores); the shadow has
        # its own so a slow shadow never queues in front of live batches.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        self._shadow_executor = ThreadPoolExecutor(1, thread_name_prefix="shadow")
        self._drift_executor = ThreadPoolExecutor(1, thread_name_prefix="drift")
        self.predictions = PredictionService(
            self.pool,
            self.split,
            self.monitors,
            self._executor,
            self._shadow_executor,
            # Requests are never split, so a limit of 1 scores each request on its own.
            max_batch_size=settings.max_batch_size if settings.batching else 1,
            shadow_timeout_s=settings.shadow_timeout_s,
            on_batch=self.metrics.batch,
            max_wait_s=settings.max_latency_ms / 1000.0,
            linger=settings.batch_linger,
        )
        self.reloader = Reloader(
            settings.model_name,
            settings.variants(),
            source,
            loader,
            self.pool,
            on_swap=self._swapped,
            on_failure=lambda variant, error: self.metrics.reload_failed(variant),
        )
        self.watcher = AliasWatcher(self.reloader, settings.reload_interval_s)
        self.jobs = SqliteJobStore(home / "jobs" / "jobs.db")
        self.job_files = FolderJobFiles(
            home / "jobs" / settings.model_name,
            int(getattr(settings, "max_text_chars", 0)),  # text services only
            settings.jobs_chunk_rows,
        )
        self.job_runner = BatchJobRunner(
            settings.model_name,
            self.jobs,
            self.job_files,
            self.predictions,
            worker=f"{socket.gethostname()}:{os.getpid()}",
            lease_s=settings.jobs_lease_s,
            retention_s=settings.jobs_retention_days * 86_400,
        )
        self.registry = ServiceRegistryView(
            settings.model_name, mlops.tracking_uri, mlops.registry_uri
        )
        self.startup_error: str | None = None
        self._started = threading.Event()
        self.metrics.challenger_weight(self.split.challenger_weight)
        self.metrics.start_counters([variant.name for variant in settings.variants()])

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Loads the variants in a thread (``/readyz`` is 503 meanwhile), then watches."""
        threading.Thread(target=self._first_load, name="first-load", daemon=True).start()

    def _first_load(self) -> None:
        try:
            report = self.reloader.reload()
            if self.pool.get("champion") is None:
                champion = report.variants[0]
                self.startup_error = (
                    f"no champion: alias {champion.alias!r} of {self.settings.model_name!r} "
                    f"points at {champion.target!r} ({champion.error or champion.outcome})"
                )
                logger.error("%s; /readyz stays 503", self.startup_error)
        except Exception as error:  # the service must report it, not die silently
            self.startup_error = f"{type(error).__name__}: {error}"
            logger.exception("first load failed; /readyz stays 503")
        finally:
            self._started.set()
            self.watcher.start()
            self.job_runner.start()

    # -- batch jobs -------------------------------------------------------------------
    async def submit_job(self, upload: Path, name: str, text_column: str) -> BatchJob:
        """Checks the upload (``name``: the client's file name) and queues it; a worker's
        job runner scores it."""
        return await asyncio.to_thread(self._submit_job, upload, name, text_column)

    def _submit_job(self, upload: Path, name: str, text_column: str) -> BatchJob:
        model = self.pool.get("champion")
        if model is None:
            raise ServiceUnavailable("the model is still loading; submit the job again shortly")
        size = upload.stat().st_size
        if size > self.settings.jobs_max_bytes:
            raise UploadTooLarge(
                f"file: {size} bytes, over the {self.settings.jobs_max_bytes}-byte limit "
                "(JOBS_MAX_BYTES)"
            )
        job = new_job(self.settings.model_name, name, size, text_column, time.time())
        try:
            self.job_files.accept(job, upload, model)
        except ConfigError as error:
            self.job_files.remove(job.job_id)
            raise InvalidArgument(str(error)) from None
        if not self.jobs.submit(job, self.settings.jobs_max_active):
            self.job_files.remove(job.job_id)
            raise TooManyRequests(
                f"{self.settings.jobs_max_active} batch jobs of {self.settings.model_name} are "
                "queued or running (JOBS_MAX_ACTIVE); retry when one has finished"
            )
        return job

    def job(self, job_id: str) -> BatchJob:
        job = self.jobs.get(job_id)
        if job is None or job.model_name != self.settings.model_name:
            raise NotFound(f"job_id: no batch job {job_id!r} here (unknown, or pruned)")
        return job

    def job_file(self, job_id: str, rejects: bool) -> Path:
        job = self.job(job_id)
        if job.status is not JobStatus.COMPLETED:
            why = f": {job.error}" if job.error else ""
            raise JobNotFinished(f"job_id: job {job_id} is {job.status.value}{why}")
        files = self.job_files
        return files.rejects_path(job) if rejects else files.output_path(job)

    @property
    def ready(self) -> bool:
        return self._started.is_set() and self.pool.get("champion") is not None

    def wait_ready(self, timeout: float) -> bool:
        self._started.wait(timeout)
        return self.ready

    def _new_monitor(self, variant: str, model: LoadedModel) -> ServingMonitor:
        settings = self.settings
        return ServingMonitor(
            LogKey(model.name, variant, model.version),
            model.contract.reference_profile,
            model.scorer.classes,
            PrometheusServingMetrics(model.name, model.version, variant, self._endpoints),
            settings.drift_config(),
            self.recorder,
            model.scorer.drift_values,
            window=settings.drift_window,
            drift_every=settings.drift_every,
            feedback_window=settings.feedback_window,
            background=self._drift_executor.submit,
            drift_min_interval_s=settings.drift_min_interval_s,
        )

    def _swapped(self, variant: VariantName, model: LoadedModel | None) -> None:
        previous_version = self.monitors.active_version(variant)
        if model is None:
            self.monitors.retire(variant)
            self.metrics.swapped(variant, "removed")
        else:
            self.monitors.monitor_for(variant, model)
            self.metrics.swapped(variant, "loaded")
        self.metrics.model_info(variant, model.version if model else None, previous_version)
        # The old version's arrays go once no batch holds them; collect them now rather than
        # at the next automatic cycle so RSS follows the swap. Then everything still alive
        # (libraries, the loaded versions) is frozen out of the collector's reach: every
        # full collection walked it all, and the requests in flight waited it out (the p99
        # tail: with it, p99 was 4-6x p50 on a zero-cost model; without it, 1.3x). Unfrozen
        # first, so a retired version frozen at an earlier swap can be freed now.
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def record_cache(self, version: str, hits: int, misses: int) -> None:
        for variant, model in self.pool.snapshot().items():
            monitor = self.monitors.active(variant)
            if model.version == version and monitor is not None:
                monitor.record_cache(hits, misses)
                return

    # -- APIs -------------------------------------------------------------------------
    async def predict(self, endpoint: str, inputs: list[Any], ctx: Any) -> list[Prediction]:
        if not self.ready:
            raise ServiceUnavailable(self.startup_error or "the model is still loading")
        key = ctx.request.headers.get(self.settings.routing_header)
        try:
            predictions = await self.predictions.predict(endpoint, inputs, key)
        except ShedError as error:
            raise TooManyRequests(str(error)) from None
        except OverloadedError as error:
            raise ServiceUnavailable(str(error)) from None
        if predictions:
            ctx.response.headers[VARIANT_HEADER] = predictions[0].variant
            ctx.response.headers[VERSION_HEADER] = predictions[0].model_version
        return predictions

    async def feedback(self, request_id: str, label: str) -> FeedbackAnswer:
        """Finds the prediction in the shared log, whichever worker answered it (in a
        thread: it reads and writes the log, and may wait for the record to arrive)."""
        try:
            attributed = await asyncio.to_thread(self.monitors.feedback, request_id, label)
        except InvalidInputError as error:
            raise InvalidArgument(str(error)) from None
        except UnknownPredictionError as error:
            raise NotFound(str(error)) from None
        return FeedbackAnswer(
            **attributed.outcome.model_dump(),
            variant=attributed.variant,
            model_version=attributed.model_version,
        )

    def traffic(self) -> TrafficState:
        return TrafficState(
            challenger_weight=self.split.challenger_weight,
            routing_header=self.settings.routing_header,
            serving={variant: model.version for variant, model in self.pool.snapshot().items()},
        )

    def _audit(self, actor: str, action: str, before: Any, after: Any, outcome: str) -> None:
        self.audit.append(
            {
                "actor": actor,
                "model": self.settings.model_name,
                "action": action,
                "before": before,
                "after": after,
                "outcome": outcome,
                "worker": os.getpid(),
            }
        )

    def set_traffic(self, request: TrafficRequest, actor: str = "service") -> TrafficState:
        before = self.split.challenger_weight
        if request.challenger_weight > 0 and not any(
            v.name == CHALLENGER for v in self.reloader.variants
        ):
            self._audit(
                actor, "traffic", before, request.challenger_weight, "refused: no challenger"
            )
            raise InvalidArgument(
                "challenger_weight: this service follows no challenger alias "
                f"({self.settings.model_config.get('env_prefix', '')}CHALLENGER_ALIAS is empty)"
            )
        self.split.set_weight(request.challenger_weight)
        self._audit(actor, "traffic", before, request.challenger_weight, "set")
        self.metrics.challenger_weight(request.challenger_weight)
        logger.info("challenger weight set to %s%%", request.challenger_weight)
        return self.traffic()

    async def reload(self, actor: str = "service") -> ReloadReport:
        before = {variant: model.version for variant, model in self.pool.snapshot().items()}
        report = await asyncio.to_thread(self.reloader.reload)
        after = {variant: model.version for variant, model in self.pool.snapshot().items()}
        outcomes = sorted({v.outcome for v in report.variants})
        self._audit(actor, "reload", before, after, ", ".join(outcomes))
        return report

    async def stats(self) -> ServiceStats:
        return await asyncio.to_thread(self._stats)

    def _stats(self) -> ServiceStats:
        shadow = self.monitors.shadow_stats()
        if shadow.agreement is not None:
            self.metrics.shadow_agreement(shadow.agreement)
        return ServiceStats(
            model_name=self.settings.model_name,
            variants=self.monitors.stats(),
            shadow=shadow,
            traffic=self.traffic(),
            last_reload=self.reloader.last,
            reload_failures=self.reloader.failures,
            swaps=self.reloader.swaps,
        )

    def observe_request(
        self, endpoint: str, status: int, seconds: float, variant: str | None
    ) -> None:
        self.monitors.record_request(variant, endpoint, status, seconds)

    def describe_variants(self) -> dict[str, Any]:
        return {
            variant: {
                "model_version": model.version,
                "bentoml_tag": model.tag,
                "task": model.contract.task,
                "metrics": model.contract.metrics,
                "estimator": model.contract.estimator,
                "gate": model.contract.gate.model_dump(),
            }
            for variant, model in self.pool.snapshot().items()
        }
