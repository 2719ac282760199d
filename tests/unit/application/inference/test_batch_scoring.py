"""The offline scoring use case over fakes: rejects are counted, not scored; chunks already
written are skipped; answers are the prediction use case's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from application.inference.batch_scoring import ScoringProgress, score_chunks
from application.inference.model_pool import ModelPool
from application.inference.serve_predictions import PredictionService
from domain.serving.batch import Chunk, Rejected, ValidatedChunk
from domain.serving.prediction import ScoredBatch
from domain.serving.variants import CHAMPION, TrafficSplit
from tests.fakes.serving import FakeScorer, loaded


class EvenRowsOnly:
    """Accepts even values, rejects odd ones (naming the field)."""

    def validate(self, chunk: Chunk) -> ValidatedChunk:
        values: list[int] = chunk.data
        good = [i for i, v in enumerate(values) if v % 2 == 0]
        bad = [Rejected(i, "value: odd") for i, v in enumerate(values) if v % 2]
        return ValidatedChunk(good, [values[i] for i in good], bad)

    def answer_extras(self, inputs: Sequence[Any]) -> dict[str, list[Any]]:
        return {"seen": list(inputs)}


class MemorySink:
    def __init__(self, done: frozenset[int] = frozenset()) -> None:
        self.done = done
        self.chunks: dict[int, tuple[ValidatedChunk, ScoredBatch | None, dict[str, Any]]] = {}

    def written(self) -> frozenset[int]:
        return self.done

    def write(
        self,
        chunk: Chunk,
        validated: ValidatedChunk,
        scored: ScoredBatch | None,
        extras: Mapping[str, Sequence[Any]],
    ) -> None:
        self.chunks[chunk.index] = (validated, scored, dict(extras))


def _chunks() -> list[Chunk]:
    return [Chunk(i, i * 4, 4, list(range(i * 4, i * 4 + 4))) for i in range(3)]


def _service(scorer: FakeScorer) -> PredictionService:
    pool = ModelPool()
    pool.swap(CHAMPION, loaded("7", scorer))
    executor = ThreadPoolExecutor(1)
    return PredictionService(pool, TrafficSplit(0.0), None, executor, executor, 64)


def test_rejects_are_not_scored_and_answers_carry_version_and_variant() -> None:
    scorer = FakeScorer(answer=1)
    sink = MemorySink()
    seen: list[int] = []

    def on_progress(progress: ScoringProgress) -> None:
        seen.append(progress.rows)

    progress = score_chunks(
        _chunks(), EvenRowsOnly(), _service(scorer), sink, CHAMPION, on_progress, "pinned"
    )
    assert (progress.rows, progress.scored, progress.rejected) == (12, 6, 6)
    assert seen == [4, 8, 12]
    assert scorer.batches == [2, 2, 2]  # one model call per chunk, rejects left out
    validated, scored, extras = sink.chunks[1]
    assert validated.positions == [0, 2] and validated.rejected[0].reason == "value: odd"
    assert scored is not None and extras == {"seen": [4, 6]}
    assert (scored.labels, scored.model_version, scored.variant) == (["b", "b"], "7", "pinned")
    assert len(set(scored.request_ids)) == 2 and scored.probabilities.shape == (2, 2)


def test_chunks_already_written_are_skipped_and_counted_as_resumed() -> None:
    scorer = FakeScorer()
    sink = MemorySink(frozenset({0, 1}))
    progress = score_chunks(_chunks(), EvenRowsOnly(), _service(scorer), sink, CHAMPION)
    assert (progress.rows, progress.resumed_rows, progress.scored) == (12, 8, 2)
    assert list(sink.chunks) == [2] and scorer.batches == [2]


def test_a_chunk_of_rejects_only_is_written_without_answers() -> None:
    chunks = [Chunk(0, 0, 2, [1, 3])]
    sink = MemorySink()
    progress = score_chunks(chunks, EvenRowsOnly(), _service(FakeScorer()), sink, CHAMPION)
    assert (progress.scored, progress.rejected) == (0, 2)
    assert sink.chunks[0][1] is None and sink.chunks[0][2] == {}
