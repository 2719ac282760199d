"""The batch-job runner on the real SQLite store and job folders: a worker that dies
mid-job is taken over once its lease runs out and the file is finished without scoring
again what was written; a new champion starts the file over; one job per claim."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from application.inference.batch_jobs import BatchJobRunner, new_job
from application.inference.model_pool import ModelPool
from application.inference.serve_predictions import PredictionService
from domain.ports import OpenedJob
from domain.serving.jobs import BatchJob, JobStatus
from domain.serving.model import LoadedModel
from domain.serving.variants import CHAMPION, TrafficSplit
from infrastructure.batch.job_files import FolderJobFiles
from infrastructure.batch.sqlite_job_store import SqliteJobStore
from tests.fakes.serving import FakeScorer, loaded

MODEL = "m"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class DiesAfter:
    """The job files, except that the worker 'dies' (an exception nothing catches, as a
    kill would) once ``chunks`` chunks are written."""

    def __init__(self, files: FolderJobFiles, chunks: int) -> None:
        self.files = files
        self.chunks = chunks

    def open(self, job: BatchJob, model: LoadedModel, restart: bool) -> OpenedJob:
        opened = self.files.open(job, model, restart)

        def chunks() -> Iterator[Any]:
            for index, chunk in enumerate(opened.chunks):
                if index == self.chunks:
                    raise KeyboardInterrupt("killed")
                yield chunk

        return OpenedJob(chunks(), opened.validator, opened.sink, opened.rows_total, opened.finish)

    def remove(self, job_id: str) -> None:
        self.files.remove(job_id)


def _text_model(version: str, scorer: FakeScorer | None = None) -> LoadedModel:
    return loaded(version, scorer, feature_schema=None)


def _runner(
    worker: str, store: SqliteJobStore, files: Any, model: LoadedModel, clock: Clock
) -> BatchJobRunner:
    pool = ModelPool()
    pool.swap(CHAMPION, model)
    executor = ThreadPoolExecutor(1)
    predictions = PredictionService(pool, TrafficSplit(0.0), None, executor, executor, 64)
    return BatchJobRunner(MODEL, store, files, predictions, worker, 30.0, 86_400.0, clock=clock)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[SqliteJobStore, FolderJobFiles, BatchJob, Clock]:
    store = SqliteJobStore(tmp_path / "jobs.db")
    files = FolderJobFiles(tmp_path / "files", max_text_chars=200, chunk_rows=10)
    upload = tmp_path / "upload.jsonl"
    texts = [{"text": f"review {i}"} for i in range(45)] + [{"text": "   "}]
    upload.write_text("".join(json.dumps(t) + "\n" for t in texts))
    clock = Clock()
    job = new_job(MODEL, "reviews.jsonl", upload.stat().st_size, "text", clock())
    files.accept(job, upload, _text_model("1"))
    assert store.submit(job, max_active=2)
    return store, files, job, clock


def test_a_dead_workers_job_is_taken_over_and_resumed(
    setup: tuple[SqliteJobStore, FolderJobFiles, BatchJob, Clock],
) -> None:
    store, files, job, clock = setup
    first_scorer, second_scorer = FakeScorer(), FakeScorer()
    dying = _runner("a", store, DiesAfter(files, chunks=2), _text_model("1", first_scorer), clock)
    with pytest.raises(KeyboardInterrupt):
        dying.run_next()
    running = store.get(job.job_id)
    assert running is not None and running.status is JobStatus.RUNNING
    assert running.rows_done == 20 and first_scorer.batches == [10, 10]

    survivor = _runner("b", store, files, _text_model("1", second_scorer), clock)
    assert not survivor.run_next(), "the lease still holds"
    clock.now += 31
    assert survivor.run_next()
    done = store.get(job.job_id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert (done.attempts, done.scored, done.rejected, done.rows_done) == (2, 45, 1, 46)
    assert second_scorer.batches == [10, 10, 5], "the written chunks are not scored again"
    scored = pd.read_json(files.output_path(done), lines=True)
    assert scored["row"].tolist() == list(range(45))
    rejects = pd.read_json(files.rejects_path(done), lines=True)
    assert rejects["row"].tolist() == [45] and "blank" in rejects["error"][0]

    # The dead worker, back, learns its lease is gone at its next write.
    assert not store.update(running, "a", 30.0, clock())


def test_a_new_champion_starts_the_file_over(
    setup: tuple[SqliteJobStore, FolderJobFiles, BatchJob, Clock],
) -> None:
    store, files, job, clock = setup
    with pytest.raises(KeyboardInterrupt):
        _runner("a", store, DiesAfter(files, chunks=3), _text_model("1"), clock).run_next()
    clock.now += 31
    second = FakeScorer(answer=1)
    assert _runner("b", store, files, _text_model("2", second), clock).run_next()
    done = store.get(job.job_id)
    assert done is not None and done.model_version == "2" and done.scored == 45
    assert second.batches == [10, 10, 10, 10, 5]
    scored = pd.read_json(files.output_path(done), lines=True)
    assert set(scored["model_version"]) == {2} and set(scored["predicted_label"]) == {"b"}


def test_active_jobs_are_bounded_per_model(
    setup: tuple[SqliteJobStore, FolderJobFiles, BatchJob, Clock],
) -> None:
    store, _, job, clock = setup
    assert store.submit(new_job(MODEL, "b.csv", 1, "text", clock()), max_active=2)
    assert not store.submit(new_job(MODEL, "c.csv", 1, "text", clock()), max_active=2)
    assert store.submit(new_job("other", "c.csv", 1, "text", clock()), max_active=2)
    claimed = store.claim(MODEL, "w", 30.0, clock())
    assert claimed is not None and claimed.job_id == job.job_id, "oldest first"
