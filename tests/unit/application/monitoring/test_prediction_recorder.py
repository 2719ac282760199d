"""The recorder keeps logging off the request path: a bounded buffer (overflow dropped and
counted, never blocking), counters summed in memory, sampling, flush on demand."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from application.monitoring.prediction_recorder import PredictionRecorder
from domain.monitoring.prediction_log import LogKey, PredictionRecord
from infrastructure.monitoring.sqlite_prediction_log import SqlitePredictionLog

KEY = LogKey("m", "champion", "1")


def _records(count: int, start: int = 0) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            f"r{i}", float(i), "m", "1", "champion", "classify", [i], "a", {"a": 1.0}, 1.0
        )
        for i in range(start, start + count)
    ]


def test_a_full_buffer_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    log = SqlitePredictionLog(tmp_path / "p.db")
    dropped: list[int] = []
    recorder = PredictionRecorder(log, capacity=10, on_dropped=dropped.append)
    recorder.submit(_records(6))
    recorder.submit(_records(6, start=6))
    assert dropped == [2] and recorder.dropped == 2
    recorder.flush()
    assert len(log.between("m", 0, 100)) == 10
    recorder.submit(_records(3, start=20))  # room again once written
    recorder.flush()
    assert len(log.between("m", 0, 100)) == 13


def test_a_started_recorder_writes_in_its_thread_and_counts_add_up(tmp_path: Path) -> None:
    log = SqlitePredictionLog(tmp_path / "p.db")
    written: list[int] = []
    recorder = PredictionRecorder(log, flush_s=0.01, on_written=written.append)
    recorder.start()
    try:
        for batch in range(5):
            recorder.submit(_records(4, start=batch * 4))
            recorder.count(KEY, {"predictions": 4, "class:a": 4})
        assert recorder.flush()
        assert len(log.recent(KEY, 100)) == 20 and sum(written) == 20
        assert log.counts(KEY) == {"predictions": 20, "class:a": 20}
    finally:
        recorder.close()


def test_sampling_keeps_about_the_share_asked(tmp_path: Path) -> None:
    recorder = PredictionRecorder(SqlitePredictionLog(tmp_path / "p.db"), sample=0.25)
    kept = sum(recorder.sampled() for _ in range(4000))
    assert 800 < kept < 1200
    assert all(PredictionRecorder(recorder.log).sampled() for _ in range(100))
    with pytest.raises(ValueError, match="sample"):
        PredictionRecorder(recorder.log, sample=1.5)


class BrokenLog(SqlitePredictionLog):
    def append(self, records: object) -> None:
        raise OSError("disk full")


def test_a_broken_store_drops_the_batch_and_keeps_serving(tmp_path: Path) -> None:
    dropped: list[int] = []
    recorder = PredictionRecorder(BrokenLog(tmp_path / "p.db"), on_dropped=dropped.append)
    recorder.submit(_records(5))
    recorder.flush()
    assert dropped == [5]


def _killed_writer(spool: str, database: str) -> None:
    """A worker that hands records over and is killed before its writer runs."""
    recorder = PredictionRecorder(
        SqlitePredictionLog(Path(database)), flush_s=3600, spool=Path(spool)
    )
    recorder.start()
    for batch in range(10):
        recorder.submit(_records(5, start=batch * 5))
    os.kill(os.getpid(), signal.SIGKILL)


def test_records_of_a_killed_worker_are_recovered_from_its_spool(tmp_path: Path) -> None:
    spool, database = tmp_path / "spool", tmp_path / "p.db"
    child = multiprocessing.get_context("spawn").Process(
        target=_killed_writer, args=(str(spool), str(database))
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    log = SqlitePredictionLog(database)
    assert log.between("m", 0, 1000) == [], "nothing reached the log before the kill"
    # A cut-short last line, as a kill in the middle of a write leaves.
    with (spool / f"{child.pid}.jsonl").open("a") as stream:
        stream.write('[["r99", 1.0, "m"')
    # A dead worker's spool from before batches were one line: a record per line.
    old = _records(1, start=200)[0]
    (spool / "999999999.jsonl").write_text(json.dumps(dataclasses.asdict(old)) + "\n")

    restarted = PredictionRecorder(log, spool=spool)
    restarted.start()
    try:
        assert len(log.between("m", 0, 1000)) == 51, "every record handed over is in the log"
        assert log.records(old.request_id) == [old]
        assert not (spool / f"{child.pid}.jsonl").exists()
        restarted.submit(_records(2, start=100))
        assert restarted.flush()
        assert len(log.between("m", 0, 1000)) == 53
        assert [p.name for p in spool.iterdir()] == [f"{os.getpid()}.jsonl"]
    finally:
        restarted.close()
    assert list(spool.iterdir()) == [], "a clean stop leaves no spool behind"
