"""Offline scoring of a whole file with the service's prediction use case.

Chunks are validated as the service validates a request (rows that fail go to the rejects
with the field and the problem; the file goes on), scored by :meth:`PredictionService.score`
(the service's own batch path, without the event loop), and handed to a sink that writes
each chunk as a unit. Chunks the sink already holds are skipped, so running the same
command again after an interrupt resumes where it stopped.

Reading and validating the next chunk, and writing the previous one, overlap with scoring
the current one (one reader and one writer thread): scoring releases the GIL in the
model's kernels, the file readers and writers in theirs, and on a small tabular model the
file work is longer than the model's. One write at a time is pending, so at most three
chunks are held at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from application.inference.serve_predictions import PredictionService
from domain.ports import ChunkValidator, ScoredChunkSink
from domain.serving.batch import Chunk, ValidatedChunk
from domain.serving.prediction import ScoredBatch
from domain.serving.variants import VariantName

BATCH_ENDPOINT = "batch"


@dataclass
class ScoringProgress:
    """Running totals; ``rows`` counts every row read (scored, rejected or resumed past)."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
    resumed_rows: int = 0
    chunks: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        done = self.rows - self.resumed_rows
        return done / self.seconds if self.seconds > 0 else 0.0


def score_chunks(
    chunks: Iterable[Chunk],
    validator: ChunkValidator,
    predictions: PredictionService,
    sink: ScoredChunkSink,
    variant: VariantName,
    on_progress: Callable[[ScoringProgress], None] | None = None,
    answered_as: str | None = None,
) -> ScoringProgress:
    """Scores every chunk not yet written; ``variant`` is the pool slot that holds the
    model, ``answered_as`` what the answers call it (a pinned version is no variant)."""
    progress = ScoringProgress()
    began = time.perf_counter()
    done = sink.written()
    writing: Future[None] | None = None
    with (
        ThreadPoolExecutor(1, thread_name_prefix="batch-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="batch-write") as writer,
    ):
        for chunk, validated in _read_ahead(chunks, validator, done, reader):
            progress.rows += chunk.size
            progress.chunks += 1
            if validated is None:
                progress.resumed_rows += chunk.size
            else:
                model_began = time.perf_counter()
                scored = _score(predictions, validated, variant, answered_as)
                progress.model_seconds += time.perf_counter() - model_began
                extras = validator.answer_extras(validated.inputs) if scored else {}
                if writing is not None:
                    writing.result()  # raises what the previous write raised
                writing = writer.submit(sink.write, chunk, validated, scored, extras)
                progress.scored += len(validated.inputs)
                progress.rejected += len(validated.rejected)
            progress.seconds = time.perf_counter() - began
            if on_progress is not None:
                on_progress(progress)
        if writing is not None:
            writing.result()
    progress.seconds = time.perf_counter() - began
    return progress


def _score(
    predictions: PredictionService,
    validated: ValidatedChunk,
    variant: VariantName,
    answered_as: str | None,
) -> ScoredBatch | None:
    if not validated.inputs:
        return None
    scored = predictions.score_batch(BATCH_ENDPOINT, validated.inputs, variant)
    if answered_as is not None and answered_as != scored.variant:
        scored = replace(scored, variant=answered_as)
    return scored


def _read_ahead(
    chunks: Iterable[Chunk],
    validator: ChunkValidator,
    done: frozenset[int],
    reader: ThreadPoolExecutor,
) -> Iterator[tuple[Chunk, ValidatedChunk | None]]:
    """Each chunk with its validation (None: written by an earlier run), the next one read
    and validated in ``reader`` while the caller scores this one."""
    source = iter(chunks)

    def next_one() -> tuple[Chunk, ValidatedChunk | None] | None:
        chunk = next(source, None)
        if chunk is None:
            return None
        return chunk, None if chunk.index in done else validator.validate(chunk)

    pending: Future[tuple[Chunk, ValidatedChunk | None] | None] = reader.submit(next_one)
    while (item := pending.result()) is not None:
        pending = reader.submit(next_one)
        yield item
