"""Writes a worker's prediction records and counters to the shared log, off the request path.

Batches hand their records to a bounded buffer and return at once; one thread per worker
writes the buffer every ``flush_s`` in one transaction. When the buffer is full, the new
records are dropped and counted (``on_dropped``): a request is never slowed or failed by
logging. What a crash can lose is what had not been written yet: at most ``flush_s`` of
records (or the buffer's capacity). Counters (predictions per class, errors, cache) are
summed in memory and written with the records.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence

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

    def start(self) -> None:
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
        try:
            if records:
                self.log.append(records)
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

    def _prune(self) -> None:
        now = time.time()
        # Hourly: every worker prunes, and a delete of nothing is cheap.
        if self._retention_s is None or now - self._pruned_at < 3600:
            return
        self._pruned_at = now
        removed = self.log.prune(now - self._retention_s)
        if removed:
            logger.info("prediction log: pruned %d records older than retention", removed)
