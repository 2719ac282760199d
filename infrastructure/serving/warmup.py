"""Start-up warm-up of a served model over several batch sizes, off the event loop.

The first passes at a new batch shape pay for allocator growth, kernel selection and (on
CUDA) lazy initialisation; running them before traffic arrives keeps those costs out of
users' latencies. Warm-up runs in a thread so the server answers ``/readyz`` with 503
while it runs, which is what keeps load balancers and Kubernetes from routing traffic early.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)


class Warmup:
    def __init__(
        self, run_batch: Callable[[int], object], batch_sizes: Sequence[int], rounds: int
    ) -> None:
        self._run_batch = run_batch
        self._batch_sizes = tuple(sorted(set(batch_sizes)))
        self._rounds = rounds
        self._done = threading.Event()
        self.batch_ms: dict[int, float] = {}
        self.seconds: float | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="model-warmup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def ready(self) -> bool:
        """True once every batch size ran; stays False if warm-up failed."""
        return self._done.is_set() and self.error is None

    def wait(self, timeout: float | None = None) -> bool:
        self._done.wait(timeout)
        return self.ready

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            for size in self._batch_sizes:
                timings = []
                for _ in range(self._rounds):
                    begun = time.perf_counter()
                    self._run_batch(size)
                    timings.append(time.perf_counter() - begun)
                # The last round is the steady-state cost this batch size will have.
                self.batch_ms[size] = round(timings[-1] * 1000.0, 2)
            self.seconds = round(time.perf_counter() - started, 3)
            logger.info("warm-up done in %.2fs; ms per batch size: %s", self.seconds, self.batch_ms)
        except Exception as error:  # a model that fails here would fail real traffic too
            self.error = f"{type(error).__name__}: {error}"
            logger.error("warm-up failed, the service stays unready: %s", self.error)
        finally:
            self._done.set()

    def describe(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "batch_sizes": list(self._batch_sizes),
            "rounds": self._rounds,
            "last_round_ms": {str(size): ms for size, ms in self.batch_ms.items()},
            "seconds": self.seconds,
            "error": self.error,
        }
