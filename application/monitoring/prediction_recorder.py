"""Writes a worker's prediction records and counters to the shared log, off the request path.

Batches hand their records to a bounded buffer and return at once; one thread per worker
writes the buffer every ``flush_s`` in one transaction. When the buffer is full, the new
records are dropped and counted (``on_dropped``): a request is never slowed or failed by
logging. Counters (predictions per class, errors, cache) are summed in memory and written
with the records.

With a ``spool`` folder, each batch's records are also appended to this worker's spool file
as one JSON line (one ``write`` to a file opened with ``O_APPEND``: the kernel has them even
if the process is killed the next instant) until the log has them. A worker that starts
imports the spool files of workers that died (``kill -9``, OOM) into the log, so a crash
loses no record that was handed over; only counter increments of the last ``flush_s`` can
be lost.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from pathlib import Path

from domain.monitoring.prediction_log import LogKey, PredictionRecord
from domain.ports import PredictionLog

logger = logging.getLogger(__name__)


class PredictionRecorder:
    def __init__(
        self,
        log: PredictionLog,
        capacity: int = 20_000,
        sample: float = 1.0,
        flush_s: float = 0.05,
        retention_s: float | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_written: Callable[[int], None] | None = None,
        spool: Path | None = None,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"sample must be within [0, 1], got {sample}")
        self.log = log
        self._capacity = capacity
        self._sample = sample
        self._flush_s = flush_s
        self._retention_s = retention_s
        self._on_dropped = on_dropped
        self._on_written = on_written
        self._records: list[PredictionRecord] = []
        self._counts: defaultdict[LogKey, Counter[str]] = defaultdict(Counter)
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stopping = False
        self._generation = 0  # buffers taken by the writer so far
        self._done = 0  # buffers the writer has finished with
        self._pruned_at = 0.0
        self.dropped = 0
        self._thread: threading.Thread | None = None
        self._spool = spool
        self._spool_fd: int | None = None
        self._spooled = 0  # spool files rotated so far

    def start(self) -> None:
        if self._spool is not None:
            self.recover()
            self._open_spool()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()

    def sampled(self) -> bool:
        """Whether to record the next row (``PREDICTION_LOG_SAMPLE`` of them)."""
        return self._sample >= 1.0 or random.random() < self._sample

    def submit(self, records: Sequence[PredictionRecord]) -> None:
        with self._lock:
            room = self._capacity - len(self._records)
            kept = records if len(records) <= room else records[: max(room, 0)]
            if kept and self._spool_fd is not None:
                os.write(self._spool_fd, _line(kept).encode())
            self._records.extend(kept)
            dropped = len(records) - len(kept)
            self.dropped += dropped
        if dropped and self._on_dropped is not None:
            self._on_dropped(dropped)

    def count(self, key: LogKey, increments: Mapping[str, float]) -> None:
        with self._lock:
            self._counts[key].update(increments)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Waits until everything submitted before this call is written (tests, feedback)."""
        if self._thread is None:
            self._write_once()
            return True
        with self._lock:
            target = self._generation + 1
            self._wake.set()
            return self._written.wait_for(lambda: self._done >= target, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._write_once()
        with self._lock:
            if self._spool_fd is not None:
                os.close(self._spool_fd)
                self._spool_fd = None
                current = self._spool_file(os.getpid())
                if current.exists() and current.stat().st_size == 0:
                    current.unlink()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._flush_s)
            self._wake.clear()
            self._write_once()

    def _write_once(self) -> None:
        with self._lock:
            records, self._records = self._records, []
            counts, self._counts = self._counts, defaultdict(Counter)
            self._generation += 1
            generation = self._generation
            flushing = self._rotate_spool() if records else None
        try:
            if records:
                self.log.append(records)
                if flushing is not None:
                    flushing.unlink(missing_ok=True)
            if counts:
                self.log.add_counts({key: dict(named) for key, named in counts.items()})
            if records and self._on_written is not None:
                self._on_written(len(records))
            self._prune()
        except Exception:  # a broken store must never take the service down
            logger.exception("prediction log: %d records not written", len(records))
            with self._lock:
                self.dropped += len(records)
            if records and self._on_dropped is not None:
                self._on_dropped(len(records))
        finally:
            with self._lock:
                self._done = max(self._done, generation)
                self._written.notify_all()

    # -- spool ------------------------------------------------------------------------
    def _spool_file(self, pid: int) -> Path:
        assert self._spool is not None
        return self._spool / f"{pid}.jsonl"

    def _open_spool(self) -> None:
        assert self._spool is not None
        self._spool.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._spool_fd = os.open(self._spool_file(os.getpid()), flags, 0o640)

    def _rotate_spool(self) -> Path | None:
        """Under the lock: the spool file of the records being written moves aside (removed
        once the log has them), and a fresh one takes the next batches."""
        if self._spool_fd is None or self._spool is None:
            return None
        os.close(self._spool_fd)
        self._spooled += 1
        flushing = self._spool / f"{os.getpid()}.{self._spooled}.flushing"
        self._spool_file(os.getpid()).replace(flushing)
        self._open_spool()
        return flushing

    def recover(self) -> int:
        """Imports the spool files of dead workers into the log; returns the records."""
        if self._spool is None or not self._spool.exists():
            return 0
        recovered = 0
        for path in sorted(self._spool.iterdir()):
            pid = int(path.name.split(".", 1)[0]) if path.name[0].isdigit() else 0
            if pid == os.getpid() or (pid and _alive(pid)):
                continue
            records = [r for line in path.read_text().splitlines() for r in _records(line)]
            if records:
                self.log.append(records)  # idempotent: a record already written stays as is
            path.unlink(missing_ok=True)
            recovered += len(records)
        if recovered:
            logger.info("prediction log: recovered %d records from dead workers", recovered)
        return recovered

    def _prune(self) -> None:
        now = time.time()
        # Hourly: every worker prunes, and a delete of nothing is cheap.
        if self._retention_s is None or now - self._pruned_at < 3600:
            return
        self._pruned_at = now
        removed = self.log.prune(now - self._retention_s)
        if removed:
            logger.info("prediction log: pruned %d records older than retention", removed)


_FIELDS = tuple(f.name for f in fields(PredictionRecord))
_VALUES = attrgetter(*_FIELDS)


def _line(records: Sequence[PredictionRecord]) -> str:
    # A batch is one line of rows, each its fields' values in order: one encoder call per
    # batch, not a dict per record, which cost the request path twice as much (measured).
    return json.dumps([_VALUES(r) for r in records]) + "\n"


def _records(line: str) -> list[PredictionRecord]:
    """A spool line's records; none from a line that does not parse (a worker killed
    mid-write can leave its last line cut short) or is blank."""
    try:
        parsed = json.loads(line)
    except ValueError:
        return []
    if isinstance(parsed, dict):  # a spool written before batches were one line
        return [PredictionRecord(**parsed)]
    return [PredictionRecord(*row) for row in parsed]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
