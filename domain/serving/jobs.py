"""Batch jobs a service runs in the background: a file submitted, scored chunk by chunk by
whichever worker holds the job's lease, and fetched when done."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class BatchJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    model_name: str
    status: JobStatus
    input_name: str = Field(description="the uploaded file's name")
    input_bytes: int
    text_column: str = Field(default="text", description="text models: the column scored")
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    model_version: str | None = Field(default=None, description="the version that scores it")
    rows_total: int | None = Field(default=None, description="rows in the file (estimate)")
    rows_done: int = 0
    scored: int = 0
    rejected: int = 0
    attempts: int = Field(default=0, description="workers that took it (more: one died)")
    error: str | None = None

    @property
    def progress(self) -> float | None:
        if self.status is JobStatus.COMPLETED:
            return 1.0
        if not self.rows_total:
            return None
        return min(1.0, self.rows_done / self.rows_total)
