"""Hot swap: follow the registry aliases, and load -> check -> swap a version that moved.

The new version is loaded next to the one serving, must fit the service (same kind, same
classes, the same request schema for tabular models) and score its smoke inputs; only then
does it replace the old one in the pool, in one reference swap. Any failure leaves the old
version serving and is reported (log line, ``on_failure`` for the metric, the last report
for ``stats``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from application.inference.model_pool import ModelPool
from domain.ports import ModelLoader, ModelSource
from domain.serving.model import LoadedModel
from domain.serving.variants import CHAMPION, Variant, VariantName

logger = logging.getLogger(__name__)


class VariantReload(BaseModel):
    model_config = ConfigDict(frozen=True)

    variant: str
    alias: str
    outcome: str  # unchanged | swapped | loaded | removed | failed | absent
    serving: str | None = Field(description="stored tag serving after this reload")
    target: str | None = Field(description="stored tag the alias points at")
    error: str | None = None
    seconds: float = 0.0


class ReloadReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: float
    variants: list[VariantReload]

    @property
    def failed(self) -> bool:
        return any(v.outcome == "failed" for v in self.variants)


def incompatibility(candidate: LoadedModel, reference: LoadedModel) -> str | None:
    """Why ``candidate`` cannot answer the requests ``reference``'s service accepts, or None."""
    new, old = candidate.contract, reference.contract
    if new.task != old.task:
        return f"task {new.task} differs from the service's {old.task}"
    if tuple(candidate.scorer.classes) != tuple(reference.scorer.classes):
        return (
            f"classes {list(candidate.scorer.classes)} differ from the service's "
            f"{list(reference.scorer.classes)}"
        )
    if new.feature_schema is not None and old.feature_schema is not None:
        new_fields = [(f.name, f.kind) for f in new.feature_schema.features]
        old_fields = [(f.name, f.kind) for f in old.feature_schema.features]
        if new_fields != old_fields:
            return "request schema differs: features (names, kinds, order) changed"
    return None


class Reloader:
    """Brings the pool in line with the aliases, one reload at a time."""

    def __init__(
        self,
        model_name: str,
        variants: Sequence[Variant],
        source: ModelSource,
        loader: ModelLoader,
        pool: ModelPool,
        on_swap: Callable[[VariantName, LoadedModel | None], None] | None = None,
        on_failure: Callable[[VariantName, str], None] | None = None,
    ) -> None:
        self.model_name = model_name
        self.variants = list(variants)
        self._source = source
        self._loader = loader
        self._pool = pool
        self._on_swap = on_swap
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self.last: ReloadReport | None = None
        self.failures = 0
        self.swaps = 0

    def reload(self) -> ReloadReport:
        with self._lock:
            # The champion first: the others are checked against the champion serving now.
            ordered = sorted(self.variants, key=lambda v: v.name != CHAMPION)
            report = ReloadReport(at=time.time(), variants=[self._follow(v) for v in ordered])
            self.last = report
            return report

    def _follow(self, variant: Variant) -> VariantReload:
        started = time.perf_counter()
        current = self._pool.get(variant.name)
        serving = current.tag if current else None
        try:
            target = self._source.tag_for_alias(self.model_name, variant.alias)
        except Exception as error:
            return self._failed(variant, serving, None, f"cannot resolve alias: {error}", started)
        if target is None:
            if current is not None and variant.name != CHAMPION:
                self._pool.swap(variant.name, None)
                self._notify(variant.name, None)
                return VariantReload(
                    variant=variant.name, alias=variant.alias, outcome="removed",
                    serving=None, target=None, seconds=time.perf_counter() - started,
                )  # fmt: skip
            return VariantReload(
                variant=variant.name, alias=variant.alias, outcome="absent",
                serving=serving, target=None,
            )  # fmt: skip
        if serving == target:
            return VariantReload(
                variant=variant.name, alias=variant.alias, outcome="unchanged",
                serving=serving, target=target,
            )  # fmt: skip
        try:
            candidate = self._loader.load(target)
            reference = self._pool.get(CHAMPION) if variant.name != CHAMPION else current
            problem = incompatibility(candidate, reference) if reference is not None else None
            if problem is not None:
                raise ValueError(problem)
            smoke = candidate.scorer.predict_proba(candidate.scorer.smoke_inputs())
            if smoke.ndim != 2 or not np.all(np.isfinite(smoke)):
                raise ValueError("smoke prediction gave no finite probabilities")
        except Exception as error:
            return self._failed(variant, serving, target, str(error), started)
        self._pool.swap(variant.name, candidate)
        self.swaps += 1
        self._notify(variant.name, candidate)
        logger.info("%s: now serving %s (was %s)", variant.name, target, serving)
        return VariantReload(
            variant=variant.name, alias=variant.alias,
            outcome="swapped" if current is not None else "loaded",
            serving=target, target=target, seconds=time.perf_counter() - started,
        )  # fmt: skip

    def _notify(self, variant: VariantName, model: LoadedModel | None) -> None:
        if self._on_swap is not None:
            self._on_swap(variant, model)

    def _failed(
        self, variant: Variant, serving: str | None, target: str | None, error: str, started: float
    ) -> VariantReload:
        self.failures += 1
        logger.error(
            "%s: could not load %s (alias %s), still serving %s: %s",
            variant.name, target, variant.alias, serving, error,
        )  # fmt: skip
        if self._on_failure is not None:
            self._on_failure(variant.name, error)
        return VariantReload(
            variant=variant.name, alias=variant.alias, outcome="failed", serving=serving,
            target=target, error=error, seconds=time.perf_counter() - started,
        )  # fmt: skip


class AliasWatcher:
    """Calls ``reload`` every ``interval_s`` seconds in a daemon thread until stopped."""

    def __init__(self, reloader: Reloader, interval_s: float) -> None:
        self._reloader = reloader
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="alias-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._reloader.reload()
            except Exception:  # the watcher must outlive any one reload
                logger.exception("alias watcher: reload failed")
