"""Batch jobs in a service: files submitted over the API, scored in the background by the
service's own prediction use case (:func:`score_chunks`), one job at a time per worker.

A worker takes a job with a lease from the shared store and renews it with every chunk it
writes. If the worker dies, the lease runs out and the next worker that asks takes the job
over, resuming after the chunks already written (by the same version; a new champion
starts the file again, so one output never mixes two versions). A worker that learns its
lease was taken over stops writing at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from application.inference.batch_scoring import ScoringProgress, score_chunks
from application.inference.serve_predictions import PredictionService
from domain.ports import BatchJobStore, JobFiles
from domain.serving.jobs import BatchJob, JobStatus
from domain.serving.variants import CHAMPION
from shared.errors import MlopsError

logger = logging.getLogger(__name__)


class LeaseLostError(Exception):
    """Another worker took the job over (this one was presumed dead)."""


def new_job(
    model_name: str, input_name: str, input_bytes: int, text_column: str, now: float
) -> BatchJob:
    return BatchJob(
        job_id=uuid.uuid4().hex,
        model_name=model_name,
        status=JobStatus.QUEUED,
        input_name=Path(input_name).name,
        input_bytes=input_bytes,
        text_column=text_column,
        submitted_at=now,
    )


class BatchJobRunner:
    def __init__(
        self,
        model_name: str,
        store: BatchJobStore,
        files: JobFiles,
        predictions: PredictionService,
        worker: str,
        lease_s: float,
        retention_s: float,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._model_name = model_name
        self._store = store
        self._files = files
        self._predictions = predictions
        self._worker = worker
        self._lease_s = lease_s
        self._retention_s = retention_s
        self._poll_s = poll_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_at = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="batch-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._prune()
                if self.run_next():
                    continue
            except Exception:  # the loop must outlive a broken store or file system
                logger.exception("batch job loop")
            self._stop.wait(self._poll_s)

    def _prune(self) -> None:
        now = self._clock()
        if now - self._pruned_at < 3600:
            return
        self._pruned_at = now
        for job_id in self._store.prune(now - self._retention_s):
            self._files.remove(job_id)

    def run_next(self) -> bool:
        """Takes and runs one job; False when none is waiting (or no model is loaded)."""
        if self._predictions.pool.get(CHAMPION) is None:
            return False
        claimed = self._store.claim(self._model_name, self._worker, self._lease_s, self._clock())
        if claimed is None:
            return False
        model = self._predictions.pool.champion()
        restart = claimed.model_version not in (None, model.version)
        if claimed.attempts > 1:
            logger.warning(
                "batch job %s: taken over (attempt %d)%s",
                claimed.job_id,
                claimed.attempts,
                "; new champion, starting over" if restart else "",
            )
        job: BatchJob = claimed.model_copy(update={"model_version": model.version})
        try:
            opened = self._files.open(job, model, restart)
            job = job.model_copy(update={"rows_total": opened.rows_total})
            self._renew(job)

            def on_progress(progress: ScoringProgress) -> None:
                nonlocal job
                job = job.model_copy(
                    update={
                        "rows_done": progress.rows,
                        "scored": progress.scored,
                        "rejected": progress.rejected,
                    }
                )
                self._renew(job)

            score_chunks(
                opened.chunks,
                opened.validator,
                self._predictions,
                opened.sink,
                CHAMPION,
                on_progress,
            )
            scored, rejected = opened.finish()
            self._end(job, JobStatus.COMPLETED, None, scored=scored, rejected=rejected)
        except LeaseLostError:
            logger.warning("batch job %s: another worker took it over; stopping", job.job_id)
        except MlopsError as error:
            self._end(job, JobStatus.FAILED, str(error))
        except Exception as error:
            logger.exception("batch job %s failed", job.job_id)
            self._end(job, JobStatus.FAILED, f"internal error ({type(error).__name__})")
        return True

    def _renew(self, job: BatchJob) -> None:
        if not self._store.update(job, self._worker, self._lease_s, self._clock()):
            raise LeaseLostError(job.job_id)

    def _end(self, job: BatchJob, status: JobStatus, error: str | None, **counts: int) -> None:
        update: dict[str, object] = {
            "status": status,
            "error": error,
            "finished_at": self._clock(),
            **counts,
        }
        if status is JobStatus.COMPLETED:
            update["rows_done"] = counts["scored"] + counts["rejected"]
        if not self._store.update(
            job.model_copy(update=update), self._worker, self._lease_s, self._clock()
        ):
            logger.warning("batch job %s: taken over before it ended (%s)", job.job_id, status)
