"""The prediction log's contract, on SQLite and on a real Redis server: records, labels
once per request id (live and shadow together), windows, counters, time ranges, pruning,
and two processes' writers sharing one SQLite file."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.monitoring.prediction_log import CORRECT, LABELLED, LogKey, PredictionRecord
from domain.ports import PredictionLog
from infrastructure.monitoring.prediction_logs import open_prediction_log
from shared.errors import UnknownPredictionError
from tests.support.system_tools import redis_server

CHAMPION = LogKey("m", "champion", "1")
SHADOW = LogKey("m", "shadow", "2")


def record(
    request_id: str, at: float, key: LogKey = CHAMPION, label: str = "a"
) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        at=at,
        model=key.model,
        version=key.version,
        variant=key.variant,
        endpoint="classify",
        inputs=[1.5, None, "red"],
        label=label,
        probabilities={"a": 0.9, "b": 0.1} if label == "a" else {"a": 0.2, "b": 0.8},
        latency_ms=12.5 if key.variant != "shadow" else None,
    )


@pytest.fixture(params=["sqlite", "redis"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PredictionLog]:
    if request.param == "sqlite":
        yield open_prediction_log("", tmp_path)
        return
    with redis_server(tmp_path / "redis") as url:
        yield open_prediction_log(url, tmp_path)


def test_records_round_trip_and_windows_are_newest_first(log: PredictionLog) -> None:
    log.append([record(f"r{i}", 100.0 + i) for i in range(5)])
    log.append([record("r4", 104.0, SHADOW, label="b")])
    assert [r.request_id for r in log.recent(CHAMPION, 3)] == ["r4", "r3", "r2"]
    first = log.records("r0")
    assert first == [record("r0", 100.0)], "inputs, probabilities and None survive"
    assert {r.variant for r in log.records("r4")} == {"champion", "shadow"}
    assert [r.request_id for r in log.between("m", 101.0, 104.0)] == ["r1", "r2", "r3"]


def test_a_request_is_labelled_once_with_its_shadow(log: PredictionLog) -> None:
    log.append([record("r1", 1.0), record("r1", 1.0, SHADOW, label="b")])
    labelled = log.label("r1", "b", 5.0)
    assert {(r.variant, r.actual, r.labelled_at) for r in labelled} == {
        ("champion", "b", 5.0),
        ("shadow", "b", 5.0),
    }
    with pytest.raises(UnknownPredictionError, match="r1"):
        log.label("r1", "a", 6.0)
    with pytest.raises(UnknownPredictionError, match="nope"):
        log.label("nope", "a", 6.0)
    assert log.counts(CHAMPION)[LABELLED] == 1 and log.counts(CHAMPION)[CORRECT] == 0
    assert log.counts(SHADOW)[CORRECT] == 1
    assert [r.actual for r in log.recent_labelled(CHAMPION, 10)] == ["b"]
    assert log.records("r1")[0].actual == "b"


def test_counters_add_up(log: PredictionLog) -> None:
    log.add_counts({CHAMPION: {"predictions": 3, "confidence_sum": 2.5}})
    log.add_counts(
        {CHAMPION: {"predictions": 2, "error:overloaded": 1}, SHADOW: {"predictions": 1}}
    )
    assert log.counts(CHAMPION) == {"predictions": 5, "confidence_sum": 2.5, "error:overloaded": 1}
    assert log.counts(SHADOW) == {"predictions": 1}


def test_prune_drops_old_records(log: PredictionLog) -> None:
    log.append([record("old", 10.0), record("new", 20.0)])
    assert log.prune(15.0) == 1
    assert [r.request_id for r in log.between("m", 0.0, 100.0)] == ["new"]
    assert [r.request_id for r in log.recent(CHAMPION, 10)] == ["new"]


def test_prune_covers_every_model(log: PredictionLog) -> None:
    others = [LogKey(name, "champion", "1") for name in ("a-model", "m2", "z")]
    log.append([record(f"old-{key.model}", 10.0, key) for key in (CHAMPION, *others)])
    log.append([record(f"new-{key.model}", 20.0, key) for key in (CHAMPION, *others)])
    assert log.prune(15.0) == 4
    for key in (CHAMPION, *others):
        assert [r.request_id for r in log.recent(key, 10)] == [f"new-{key.model}"]
    assert log.prune(15.0) == 0


def _write(path: str, worker: int) -> None:
    log = open_prediction_log(f"sqlite:///{path}", Path())
    for batch in range(20):
        log.append([record(f"w{worker}-{batch}-{i}", float(batch)) for i in range(25)])
        log.add_counts({CHAMPION: {"predictions": 25}})


def test_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write, args=(path, w)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    log = open_prediction_log(f"sqlite:///{path}", Path())
    assert len(log.between("m", 0.0, 100.0)) == 3 * 20 * 25
    assert log.counts(CHAMPION)["predictions"] == 1500
