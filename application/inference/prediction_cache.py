"""An in-process LRU cache with a time-to-live for served predictions.

Keys carry the model version, so a new champion never answers with an old model's output
even while entries of the previous version age out. Lookups and inserts come from the
batching worker thread and the event loop, hence the lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Value = TypeVar("Value")


@dataclass(frozen=True)
class CacheLookup(Generic[Value]):
    """Hits by position in the looked-up keys, and the positions that missed."""

    hits: dict[int, Value]
    misses: list[int]


class PredictionCache(Generic[Value]):
    def __init__(
        self,
        max_entries: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be > 0")
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Value]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def lookup(self, keys: Sequence[Hashable]) -> CacheLookup[Value]:
        hits: dict[int, Value] = {}
        misses: list[int] = []
        now = self._clock()
        with self._lock:
            for position, key in enumerate(keys):
                entry = self._entries.get(key)
                if entry is None:
                    misses.append(position)
                elif entry[0] <= now:
                    del self._entries[key]
                    misses.append(position)
                else:
                    self._entries.move_to_end(key)
                    hits[position] = entry[1]
        return CacheLookup(hits=hits, misses=misses)

    def store(self, items: Sequence[tuple[Hashable, Value]]) -> None:
        expires = self._clock() + self._ttl
        with self._lock:
            for key, value in items:
                self._entries[key] = (expires, value)
                self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
