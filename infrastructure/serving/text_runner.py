"""The split text topology: HTTP front workers and a model runner that owns the models.

``bentoml.depends`` composes them (BentoML serves the runner as its own process group, one
worker per GPU, reached over a Unix socket with pickled bodies). The front workers parse,
validate, route variants, cache, batch and monitor exactly as the single-process service
does; what they hand the model is a call to the runner with a micro-batch of texts and the
stored tag to score them with. The runner merges the micro-batches of every front worker
(the same :class:`MicroBatcher`, one per tag) into large batches for the device. A front
keeps one call in flight, so while the runner scores one front's call only the other
fronts' calls can wait: merging needs three fronts or more, and a runner batch size with
room for several fronts' calls (``GPU_RUNNER_BATCH_FACTOR``).

The runner is addressed by tag, not by alias, so a front worker and the runner can never
disagree on which version scored a request: a hot swap on the front asks the runner to
load (and warm) the new tag before the front's pool swaps to it. A tag that has not been
used for ``RUNNER_IDLE_EVICT_S`` is dropped when another one loads; asked for again, it is
loaded again.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any, Literal

import aiohttp
import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel, ConfigDict

from application.inference.batching import MicroBatcher
from domain.ports import ModelLoader
from domain.serving.model import LoadedModel
from infrastructure.config.settings import TextServingSettings
from infrastructure.ml.device import usable_cores
from infrastructure.serving.client_error_logging import skip_silent_access_log
from infrastructure.serving.loaders import (
    BackendRecord,
    ForwardPlan,
    TextScorer,
    WarmupRecord,
    loaded_model,
    stored_model,
)
from infrastructure.serving.stored_model import resolve_served_model
from infrastructure.store.bento_model_store import VERSION_LABEL
from shared.errors import ModelNotFoundError, OverloadedError, ShedError

logger = logging.getLogger(__name__)

Topology = Literal["single", "split"]
RUNNER_SERVICE_NAME = "text_runner"
# Front workers start before the runner has bound its socket; the first load waits for it.
RUNNER_CONNECT_TIMEOUT_S = 300.0
RUNNER_CONNECT_PAUSE_S = 0.5
# On a GPU the runner merges the fronts' micro-batches into batches this many times larger
# (H100: 32 texts per request served 3,760 texts/s with batches of 64 and 5,347 with 256).
GPU_RUNNER_BATCH_FACTOR = 4
MAX_FRONT_WORKERS = 8

LoaderFactory = Callable[[TextServingSettings, Callable[[str, int, int], None]], ModelLoader]


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


# The measured winner per device (README, "Runner topology"). On 2 CPU cores the split
# served 0.87-0.89x the single process's requests/s (zero-cost model) and 0.70-0.86x with
# the synthetic-GPU model: the front is the bottleneck there and the runner call adds to
# it. No GPU run has measured the split yet, so CUDA keeps the single process until one
# does (`make bench-text` with MLOPS_TEXT_SERVE_TOPOLOGY=split on the GPU machine).
MEASURED_WINNER: dict[str, Topology] = {"cpu": "single", "cuda": "single"}


def resolve_topology(settings: TextServingSettings, has_cuda: bool | None = None) -> Topology:
    """The setting, or for ``auto`` the topology measured fastest on this kind of device."""
    if settings.topology != "auto":
        return settings.topology
    cuda = cuda_available() if has_cuda is None else has_cuda
    device = "cuda" if cuda and settings.device in ("auto", "cuda") else "cpu"
    return MEASURED_WINNER[device]


# On CPU a second runner worker scores while a killed one restarts: a kill -9 under load
# failed 12.3% of requests with one runner (an outage until the new one loaded, 15.5 s)
# and 0.03% with two, which cost 7% of throughput on 2 cores (README, "Reliability").
CPU_RUNNER_WORKERS = 2


def runner_workers(settings: TextServingSettings) -> int:
    """One runner worker per assigned GPU (BentoML gives each its own), else two."""
    return settings.runner_workers or settings.gpus or CPU_RUNNER_WORKERS


def front_workers(settings: TextServingSettings, topology: Topology, cores: int) -> int:
    """The set value; else one worker per core (of the ``cores`` this process may use) the
    runner leaves, up to 8, when split, and one when single (a second model copy on the
    same cores measured slower)."""
    if settings.workers:
        return settings.workers
    if topology == "single":
        return 1
    spare = cores - runner_workers(settings)
    return max(1, min(MAX_FRONT_WORKERS, spare))


def model_threads(
    settings: TextServingSettings, workers: int, cores: int, machine_cores: int | None
) -> int:
    """CPU threads per model copy: the setting, else the ``cores`` this process may use
    shared out among the workers that each hold a copy. One copy gets the libraries'
    default (0) on a machine of its own, and ``cores`` when its CPUs are limited below
    ``machine_cores`` (a pod's CPU limit, a cpuset), which that default does not see.

    Two single-topology workers with torch's default (every core each) ran four compute
    threads on two cores: at half the measured capacity, 15% of the requests failed.
    """
    if settings.torch_threads:
        return settings.torch_threads
    if workers <= 1:
        return cores if cores < (machine_cores or cores) else 0
    return max(1, cores // workers)


def use_model_threads(settings: TextServingSettings, threads: int) -> TextServingSettings:
    """Sets this process's torch threads (0: leave torch's default) and returns the
    settings the model's loader gets (ONNX Runtime reads the same count from them)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return settings.model_copy(update={"torch_threads": threads})


def use_gil_switch_interval(settings: TextServingSettings) -> None:
    """Shortens how long a thread may hold the GIL while another waits for it (0: leave
    Python's 5 ms), in a process where the event loop and the model's thread share it.

    Each torch op gives the GIL up, and with 5 ms the event loop, busy with a burst of
    requests, kept it that long while the model's thread waited to start its next op. In
    alternating runs 0.5 ms was never worse on the 64-client p99 (503 / 462 / 513 ms against
    1,106 / 661 / 502 ms) while throughput moved within this machine's noise; the zero-cost
    overhead benchmark read the same with either (README, "The GIL switch interval").
    """
    if settings.gil_switch_ms:
        sys.setswitchinterval(settings.gil_switch_ms / 1000.0)


def runner_batch_size(settings: TextServingSettings, has_cuda: bool) -> int:
    if settings.runner_max_batch_size:
        return settings.runner_max_batch_size
    factor = GPU_RUNNER_BATCH_FACTOR if has_cuda else 1
    return settings.max_batch_size * factor


class RunnerModel(BaseModel):
    """What the runner tells a front worker about a version it loaded."""

    model_config = ConfigDict(frozen=True)

    tag: str
    version: str
    classes: list[str]
    device: str
    backend: dict[str, Any]
    forward_max_texts: int | None
    forward_max_tokens: int | None
    warmup_batch_ms: dict[str, float]
    warmup_seconds: float | None


class RunnerStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    pid: int
    device: str | None
    max_batch_size: int
    calls: int
    batches: int
    items: int
    mean_batch: float | None
    loaded: list[str]


def describe_loaded(model: LoadedModel) -> RunnerModel:
    scorer = model.scorer
    text = scorer if isinstance(scorer, TextScorer) else None
    return RunnerModel(
        tag=model.tag,
        version=model.version,
        classes=list(scorer.classes),
        device=text.device if text else "cpu",
        backend=asdict(text.backend) if text else asdict(BackendRecord(type(scorer).__name__)),
        forward_max_texts=text.forward.max_texts if text else None,
        forward_max_tokens=text.forward.max_tokens if text else None,
        warmup_batch_ms={str(k): v for k, v in text.warmup.batch_ms.items()} if text else {},
        warmup_seconds=text.warmup.seconds if text else None,
    )


@dataclass
class _Held:
    model: LoadedModel
    batcher: MicroBatcher[str, np.ndarray]
    used: float


class RunnerCore:
    """The runner's state, apart from BentoML so it can be tested in-process: the versions
    it holds, one batcher each, and counters."""

    def __init__(
        self, loader: ModelLoader, max_batch_size: int, max_wait_s: float, idle_evict_s: float
    ) -> None:
        self._loader = loader
        self.max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._idle_evict_s = idle_evict_s
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        # One thread scores at a time: the model's kernels already use the cores or the GPU.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="runner-model")
        self._loads = ThreadPoolExecutor(1, thread_name_prefix="runner-load")
        self.calls = 0
        self.batches = 0
        self.items = 0

    def ensure(self, tag: str) -> LoadedModel:
        """The version for ``tag``, loaded (and warmed, by the loader) if not held."""
        with self._lock:
            held = self._held.get(tag)
            if held is not None:
                held.used = time.monotonic()
                return held.model
            model = self._loader.load(tag)
            scorer = model.scorer
            batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
                lambda texts: list(scorer.predict_proba(texts)),
                self.max_batch_size,
                self._executor,
                on_batch=self._count_batch,
                max_wait_s=self._max_wait_s,
            )
            self._held[tag] = _Held(model, batcher, time.monotonic())
            self._evict_idle(keep=tag)
            logger.info("runner holds %s", sorted(self._held))
            return model

    def _evict_idle(self, keep: str) -> None:
        now = time.monotonic()
        idle = [
            tag
            for tag, held in self._held.items()
            if tag != keep and now - held.used > self._idle_evict_s
        ]
        for tag in idle:
            del self._held[tag]
        if idle:
            logger.info("runner dropped idle versions %s", idle)
            # As in ServingRuntime._swapped: free the dropped weights now, then keep what
            # lives out of the collector's full passes.
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def _count_batch(self, size: int, seconds: float) -> None:
        self.batches += 1
        self.items += size

    async def score(self, tag: str, texts: list[str]) -> np.ndarray:
        self.calls += 1
        held = self._held.get(tag)
        if held is None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._loads, self.ensure, tag)
            held = self._held[tag]
        held.used = time.monotonic()
        rows = await held.batcher.submit(texts)
        return np.asarray(rows, dtype=float)

    def stats(self) -> RunnerStats:
        devices = [describe_loaded(h.model).device for h in self._held.values()]
        return RunnerStats(
            pid=os.getpid(),
            device=devices[0] if devices else None,
            max_batch_size=self.max_batch_size,
            calls=self.calls,
            batches=self.batches,
            items=self.items,
            mean_batch=round(self.items / self.batches, 2) if self.batches else None,
            loaded=sorted(self._held),
        )


@dataclass(frozen=True)
class RunnerBlueprint:
    cls: type
    config: dict[str, Any]


def build_text_runner(
    settings: TextServingSettings, loader_factory: LoaderFactory, has_cuda: bool
) -> RunnerBlueprint:
    """The runner service class; the entry module applies ``bentoml.service`` to it."""
    batch = runner_batch_size(settings, has_cuda)
    # The runner's loader sizes forward passes and warm-up for the merged batches; the
    # cache belongs to the fronts (a hit there never reaches the runner).
    runner_settings = settings.model_copy(update={"max_batch_size": batch, "cache": False})

    # Runner workers on the CPU each hold a copy: they share the cores out as the single
    # topology's workers do (a GPU runner's threads only feed its device).
    copies = 1 if has_cuda else runner_workers(settings)
    threads = model_threads(settings, copies, usable_cores(), os.cpu_count())

    class TextRunner:
        def __init__(self) -> None:
            use_gil_switch_interval(settings)
            skip_silent_access_log()
            loader = loader_factory(
                use_model_threads(runner_settings, threads), lambda version, hits, misses: None
            )
            self.core = RunnerCore(
                loader, batch, settings.max_latency_ms / 1000.0, settings.runner_idle_evict_s
            )

        @bentoml.on_startup
        async def _preload(self) -> None:
            """Loads the version the alias names before this worker takes calls (uvicorn
            accepts after the startup hooks): a runner restarted after a crash loaded it
            on the first call instead, and the calls queued behind that load outlasted the
            fronts' latency bound (503s). A version the fronts use that the alias no
            longer names is loaded on its first call, as before."""
            try:
                tag = resolve_served_model(runner_settings).tag
                await asyncio.to_thread(self.core.ensure, tag)
            except Exception as error:  # the fronts' load calls report it; start anyway
                logger.warning("runner preload failed: %s", error)

        @bentoml.api
        def load(self, tag: str) -> RunnerModel:
            """Loads and warms ``tag`` if not held (a sync API: BentoML runs it in a thread)."""
            return describe_loaded(self.core.ensure(tag))

        @bentoml.api
        async def score(self, tag: str, texts: list[str]) -> np.ndarray:
            """Class probabilities for a front's micro-batch, merged with the others'."""
            try:
                return await self.core.score(tag, texts)
            except ShedError as error:
                raise RunnerBusy(str(error)) from None
            except OverloadedError as error:
                raise bentoml.exceptions.ServiceUnavailable(str(error)) from None

        @bentoml.api
        async def stats(self) -> RunnerStats:
            return self.core.stats()

    TextRunner.__qualname__ = TextRunner.__name__
    config: dict[str, Any] = {
        "name": RUNNER_SERVICE_NAME,
        "workers": runner_workers(settings),
        # Covers a first load (an ONNX export and its int8 accuracy check take a minute or
        # two on small CPUs); the fronts keep their own request timeout and latency bound.
        "traffic": {"timeout": settings.runner_timeout_s},
        "logging": {"access": {"enabled": False}},
        "metrics": {"enabled": False},
        "tracing": {"excluded_urls": ["/load", "/score", "/stats"]},
    }
    if settings.gpus:
        config["resources"] = {"gpu": settings.gpus}
    return RunnerBlueprint(TextRunner, config)


class RunnerBusy(BentoMLException):
    error_code = HTTPStatus.TOO_MANY_REQUESTS


def runner_error(error: BentoMLException) -> Exception:
    """The runner's refusal as the front's own: shed (429) or over the latency bound (503)."""
    status = int(getattr(error, "error_code", 500))
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return ShedError(f"model runner: {error}", retry_after_s=1.0)
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        return OverloadedError(f"model runner: {error}")
    return error


class RunnerCalls:
    """Sync calls to the runner from the front's threads (its model thread, the reloader).

    BentoML's client for a dependency is aiohttp on the worker's event loop (its sessions
    belong to that loop), so each call is handed to the loop and the thread waits for it.
    """

    def __init__(self, runner: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> None:
        self._runner = runner
        self._loop = loop

    def __call__(self, name: str, **kwargs: Any) -> Any:
        async def call() -> Any:
            return await self._runner().to_async.call(name, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()


class RunnerClassifier:
    """Stands where the transformers classifier stands in the single topology: the front's
    :class:`TextScorer` (cache, drift values) calls it from its model thread."""

    def __init__(self, call: RunnerCalls, model: RunnerModel) -> None:
        self._call = call
        self.model = model
        self.classes = tuple(model.classes)
        self.device = model.device

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 0, max_tokens: int = 0
    ) -> np.ndarray:
        try:
            rows = self._call("score", tag=self.model.tag, texts=list(texts))
        except BentoMLException as error:
            raise runner_error(error) from None
        except (aiohttp.ClientConnectionError, ConnectionError, FileNotFoundError) as error:
            # The runner process is gone (killed, restarting): BentoML starts a new one,
            # which preloads the alias's version before it takes calls. Until then: 503
            # with Retry-After.
            raise OverloadedError(
                f"model runner unavailable ({type(error).__name__}); it is restarting"
            ) from None
        scores: np.ndarray = np.asarray(rows, dtype=float)
        return scores


class RunnerModelLoader:
    """The front's loader in the split topology: the contract from the store, the weights
    in the runner (asked to load and warm the tag before the front's pool swaps to it)."""

    def __init__(
        self,
        settings: TextServingSettings,
        runner: Callable[[], Any],
        on_cache: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Built on the worker's event loop (BentoML creates the service instance there)."""
        self._settings = settings
        self._call = RunnerCalls(runner, asyncio.get_running_loop())
        self._on_cache = on_cache

    def _load_in_runner(self, tag: str) -> RunnerModel:
        deadline = time.monotonic() + RUNNER_CONNECT_TIMEOUT_S
        while True:
            try:
                answer = self._call("load", tag=tag)
                return answer if isinstance(answer, RunnerModel) else RunnerModel(**answer)
            except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionError):
                # The runner's socket is not there yet (it starts next to the fronts).
                if time.monotonic() > deadline:
                    raise
                time.sleep(RUNNER_CONNECT_PAUSE_S)

    def load(self, tag: str) -> LoadedModel:
        settings = self._settings
        stored, contract = stored_model(tag)
        if contract.max_length is None:
            raise ModelNotFoundError(f"{tag} is a {contract.task} model, not a text one")
        described = self._load_in_runner(tag)
        version = str(stored.info.labels.get(VERSION_LABEL, stored.tag.version or ""))
        scorer = TextScorer.with_cache(
            RunnerClassifier(self._call, described),
            version,
            ForwardPlan(described.forward_max_texts or 0, described.forward_max_tokens or 0),
            settings,
            self._on_cache,
        )
        scorer.backend = BackendRecord(**described.backend)
        scorer.warmup = WarmupRecord(
            {int(k): v for k, v in described.warmup_batch_ms.items()},
            described.warmup_seconds or 0.0,
        )
        return loaded_model(stored, contract, scorer)
