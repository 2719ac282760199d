"""Batch jobs in one SQLite file (``$MLOPS_HOME/jobs/jobs.db``), shared by every worker.

Each job is its JSON document plus the columns the queries need (model, status, lease).
Claims and updates run in ``BEGIN IMMEDIATE`` transactions, so two workers never take the
same job, and a worker whose lease was taken over learns it at its next update.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from domain.serving.jobs import BatchJob, JobStatus
from infrastructure.storage.sqlite_database import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    worker TEXT,
    lease_until REAL,
    submitted_at REAL NOT NULL,
    finished_at REAL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_model ON jobs (model, status, submitted_at);
"""
ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class SqliteJobStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteDatabase(path, SCHEMA)
        self._connection = self._db.connection
        self._transaction = self._db.transaction

    def submit(self, job: BatchJob, max_active: int) -> bool:
        with self._transaction() as db:
            (active,) = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE model = ? AND status IN (?, ?)",
                (job.model_name, *ACTIVE),
            ).fetchone()
            if active >= max_active:
                return False
            db.execute(
                "INSERT INTO jobs (job_id, model, status, submitted_at, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    job.job_id,
                    job.model_name,
                    job.status.value,
                    job.submitted_at,
                    job.model_dump_json(),
                ),
            )
        return True

    def get(self, job_id: str) -> BatchJob | None:
        row = (
            self._connection()
            .execute("SELECT body FROM jobs WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        return BatchJob.model_validate_json(row[0]) if row else None

    def claim(self, model_name: str, worker: str, lease_s: float, now: float) -> BatchJob | None:
        with self._transaction() as db:
            row = db.execute(
                "SELECT body FROM jobs WHERE model = ? AND (status = ? OR (status = ? AND "
                "lease_until < ?)) ORDER BY submitted_at LIMIT 1",
                (model_name, JobStatus.QUEUED.value, JobStatus.RUNNING.value, now),
            ).fetchone()
            if row is None:
                return None
            job = BatchJob.model_validate_json(row[0])
            job = job.model_copy(
                update={
                    "status": JobStatus.RUNNING,
                    "started_at": job.started_at or now,
                    "attempts": job.attempts + 1,
                }
            )
            self._write(db, job, worker, now + lease_s)
        return job

    def update(self, job: BatchJob, worker: str, lease_s: float, now: float) -> bool:
        with self._transaction() as db:
            row = db.execute(
                "SELECT worker, status FROM jobs WHERE job_id = ?", (job.job_id,)
            ).fetchone()
            if row is None or row[0] != worker or row[1] != JobStatus.RUNNING.value:
                return False
            self._write(db, job, worker, now + lease_s)
        return True

    def prune(self, before: float) -> list[str]:
        with self._transaction() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT job_id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?",
                    (before,),
                )
            ]
            db.executemany("DELETE FROM jobs WHERE job_id = ?", [(i,) for i in ids])
        return ids

    @staticmethod
    def _write(db: sqlite3.Connection, job: BatchJob, worker: str, lease_until: float) -> None:
        db.execute(
            "UPDATE jobs SET status = ?, worker = ?, lease_until = ?, finished_at = ?, body = ? "
            "WHERE job_id = ?",
            (
                job.status.value,
                worker,
                lease_until,
                job.finished_at,
                job.model_dump_json(),
                job.job_id,
            ),
        )
