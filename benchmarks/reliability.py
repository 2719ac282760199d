"""Reliability runs against a real `bentoml serve` of the tabular service on 127.0.0.1.

- ``overload``: measure capacity (closed loop, 64 clients), then send 3x that rate (open
  loop) for ``--seconds``, then half of it: excess requests must get 429 with
  ``Retry-After`` quickly, accepted ones keep p99 within 2x ``MAX_LATENCY_MS``, and the
  service recovers as soon as the load drops.
- ``chaos``: steady load at half capacity on two workers; ``kill -9`` of one worker part way
  through. Reports failed requests, how long until a replacement worker serves, and checks
  that every answered prediction is in the prediction log.
- ``soak``: 80% of capacity for ``--seconds`` (600 for the real run): errors, server RSS
  growth after warm-up, and latency percentiles of the first and last minute.

``--edge`` puts HAProxy (``deploy/haproxy/haproxy.cfg``, the Debian package ``haproxy``) in
front of the service, as the compose and Kubernetes examples do, and sends the load through it.

Each prints a table and writes ``benchmarks/results/reliability_<mode>.json``. Loopback only;
every run stops by itself.

    make overload | make chaos | make soak     # or: python -m benchmarks.reliability --help
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psutil
import uvloop

from benchmarks.champions import REPO_ROOT, ensure_champion, tool, use_stores
from benchmarks.http_load import free_port, run_level, server_process

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.5, 5.0, 1.9]]
TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "the story is too thin and the acting too stiff to care about .",
    "an utterly charming and hilarious film that reminds you why you go to the movies .",
    "it 's a dull , lifeless exercise in tedium .",
]
WORKER = re.compile(r'^mlops_model_info\{[^}]*worker="(\d+)"[^}]*\}\s+1\.0$', re.MULTILINE)
MAX_IN_FLIGHT = 4096
SHED_FAST_MS = 100.0
DRAIN_LIMIT_S = 30.0
ANSWERED = (200, 429, 4290)  # anything else (5xx, 0: connection error) failed


@dataclass(slots=True)
class Sample:
    sent: float
    status: int  # 0: connection error
    ms: float
    request_id: str | None = None
    # How far behind its schedule the generator sent it: a generator short of CPU sends
    # late and reads every answer late, which looks like a slow server.
    late_ms: float = 0.0


@dataclass
class Phase:
    name: str
    rate: float
    seconds: float
    sent: int = 0
    ok: int = 0
    shed: int = 0
    failed: int = 0
    failed_statuses: dict[str, int] = field(default_factory=dict)
    ok_p50_ms: float | None = None
    ok_p99_ms: float | None = None
    shed_p99_ms: float | None = None
    shed_with_retry_after: int = 0
    generator_late_p99_ms: float | None = None


@dataclass(frozen=True)
class Target:
    """The service under test: what ``bentoml serve`` runs and what one request sends."""

    kind: str
    service: str
    model: str
    config: str
    env_prefix: str
    field: str
    inputs: list[Any]
    # Waiting at the edge per worker: what one serves in about 3/4 of max_latency_ms.
    edge_queue: int

    def body(self, index: int) -> bytes:
        return json.dumps({self.field: [self.inputs[index % len(self.inputs)]]}).encode()


TARGETS = {
    "tabular": Target(
        "tabular",
        "infrastructure.serving.entrypoints.tabular:TabularClassifier",
        "iris-classifier",
        "configs/iris.yaml",
        "MLOPS_SERVE_",
        "rows",
        ROWS,
        384,
    ),
    "text": Target(
        "text",
        "infrastructure.serving.entrypoints.text:TextClassifier",
        "sst2-sentiment",
        "configs/sst2_quick.yaml",
        "MLOPS_TEXT_SERVE_",
        "texts",
        TEXTS,
        128,
    ),
}
TARGET = TARGETS["tabular"]  # set by main() from --kind


def _body(index: int) -> bytes:
    return TARGET.body(index)


async def _open_loop(url: str, rate: float, seconds: float, start: float) -> list[Sample]:
    """Requests at a fixed rate whatever the answers (clients that do not wait their turn)."""
    samples: list[Sample] = []
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=30)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(index: int) -> None:
            sent = time.perf_counter()
            late_ms = max(0.0, (sent - began - index / rate) * 1000)
            try:
                async with in_flight, session.post(url, data=_body(index), headers=headers) as r:
                    payload = await r.read()
                    status = r.status
                    retry_after = r.headers.get("retry-after")
            except (aiohttp.ClientError, TimeoutError):
                samples.append(
                    Sample(sent - start, 0, (time.perf_counter() - sent) * 1000, None, late_ms)
                )
                return
            request_id = None
            if status == 200:
                request_id = json.loads(payload)[0]["request_id"]
            elif status == 429 and retry_after is None:
                status = 4290  # shed without Retry-After: counted apart
            samples.append(
                Sample(
                    sent - start, status, (time.perf_counter() - sent) * 1000, request_id, late_ms
                )
            )

        # Only the requests in flight are held: keeping every finished task for the whole
        # run grew this process by 113 MiB in a 150 s soak (29 MiB without), and the
        # collector's full passes over them paused the generator longer and longer on the
        # cores it shares with the server, which reads as the service slowing down.
        pending: set[asyncio.Task[None]] = set()
        began = time.perf_counter()
        count = int(rate * seconds)
        for index in range(count):
            delay = began + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(index))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    return samples


def _phase(name: str, rate: float, seconds: float, samples: list[Sample]) -> Phase:
    phase = Phase(name, round(rate, 1), seconds, sent=len(samples))
    ok = [s.ms for s in samples if s.status == 200]
    shed = [s.ms for s in samples if s.status in (429, 4290)]
    phase.ok, phase.shed = len(ok), len(shed)
    phase.shed_with_retry_after = sum(s.status == 429 for s in samples)
    for s in samples:
        if s.status not in ANSWERED:
            phase.failed += 1
            phase.failed_statuses[str(s.status)] = phase.failed_statuses.get(str(s.status), 0) + 1
    if ok:
        phase.ok_p50_ms = round(float(np.percentile(ok, 50)), 1)
        phase.ok_p99_ms = round(float(np.percentile(ok, 99)), 1)
    if shed:
        phase.shed_p99_ms = round(float(np.percentile(shed, 99)), 1)
    if samples:
        late = [s.late_ms for s in samples]
        phase.generator_late_p99_ms = round(float(np.percentile(late, 99)), 1)
    return phase


def _metadata(base: str) -> dict[str, Any]:
    import httpx

    reply = httpx.post(f"{base}/metadata", json={}, timeout=30)
    reply.raise_for_status()
    described: dict[str, Any] = reply.json()
    return described


def _workers(base: str) -> set[int]:
    import httpx

    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {int(pid) for pid in WORKER.findall(text)}


def _rss_mib(pid: int) -> float:
    total = 0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def _capacity(base: str, requests: int) -> float:
    level = run_level("capacity", f"{base}/classify", _body, 64, requests)
    return float(level.rps)


# A client of h2load waits for its answer before its next request (HTTP/1.1), so each sends
# one request per this many seconds: the offered rate holds while answers come within it
# (the accepted-latency bound, 2x max_latency_ms), and the generator's log shows when not.
H2LOAD_CLIENT_PERIOD_S = 2.0
# At most this many h2load clients (connections). Each new connection costs the server's
# event loop, and clients start within one period: on a machine serving 4,420-6,380 rps,
# 3x capacity meant 26,524 clients (past the edge's 8,192, so the rest waited in the
# kernel's accept queue: 429s and accepted answers both read 5 s at p99), and a short soak
# at half capacity opened 6,380 at once (p99 about 1 s, 2-6% shed when the in-flight limit
# was reached). With 1,024, two soaks shed nothing (p99 67 / 125 ms) and both overload runs
# passed. Above 512 requests/s each client sends more often than every 2 s: an accepted
# answer slower than its period then delays that client, and ``sent`` in the report shows
# the rate that was offered.
H2LOAD_MAX_CLIENTS = 1024
SIDE_STREAM_SHARE = 0.02


def _open_loop_phase(
    url: str,
    rate: float,
    seconds: float,
    start: float,
    generator: str,
    max_clients: int = H2LOAD_MAX_CLIENTS,
) -> tuple[list[Sample], list[Sample]]:
    """(samples, side-stream samples) of ``rate`` requests/s for ``seconds``.

    ``h2load`` (nghttp2, C) costs the machine about 40 us per request: this Python
    generator costs about 300 us and, on two cores shared with the server, fell 140 ms
    behind its own schedule at 2,000 requests/s, which read as slow 429s. A small aiohttp
    side stream runs alongside it to see the headers h2load does not report."""
    if generator == "aiohttp":
        return uvloop.run(_open_loop(url, rate, seconds, start)), []

    async def both() -> tuple[list[Sample], list[Sample]]:
        side_rate = max(1.0, rate * SIDE_STREAM_SHARE)
        side = asyncio.create_task(_open_loop(url, side_rate, seconds, start))
        main = await _h2load(url, rate, seconds, start, max_clients)
        return main, await side

    return uvloop.run(both())


async def _h2load(
    url: str, rate: float, seconds: float, start: float, max_clients: int = H2LOAD_MAX_CLIENTS
) -> list[Sample]:
    binary = shutil.which("h2load")
    if binary is None:
        raise SystemExit(
            "overload needs h2load (the Debian package nghttp2-client; `make system-deps`), "
            "or --generator aiohttp"
        )
    clients = max(1, min(max_clients, math.ceil(rate * H2LOAD_CLIENT_PERIOD_S)))
    total = max(clients, int(rate * seconds))
    with tempfile.TemporaryDirectory(prefix="h2load-") as folder:
        body, log = Path(folder) / "body.json", Path(folder) / "requests.tsv"
        body.write_bytes(_body(0))
        command = [
            binary, "--h1", "-t", "1", "-c", str(clients), "-n", str(total),
            "--rps", f"{rate / clients:.6f}",
            # Clients start spread over one period (every 10 ms, as many as the rate sends
            # in 10 ms), not all at once: started together, their requests arrive in
            # bursts of `clients`.
            "-r", str(max(1, math.ceil(rate / 100))),
            "--rate-period", "10ms",
            "-d", str(body), "-H", "content-type: application/json",
            "--log-file", str(log), url,
        ]  # fmt: skip
        # Wall clock -> run clock, taken at launch (taken after the run, every sample of a
        # soak was shifted by its length).
        offset = time.time() - (time.perf_counter() - start)
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0 or not log.exists():
            raise SystemExit(f"h2load failed: {output.decode(errors='replace')[-2000:]}")
        samples = []
        for line in log.read_text().splitlines():
            sent_us, status, latency_us = line.split("\t")[:3]
            samples.append(Sample(int(sent_us) / 1e6 - offset, int(status), int(latency_us) / 1e3))
    # Requests h2load could not send or whose connection failed are not in its log.
    samples += [Sample(seconds, 0, 0.0) for _ in range(total - len(samples))]
    return samples


def overload(base: str, args: argparse.Namespace, max_latency_ms: int) -> dict[str, Any]:
    capacity = _capacity(base, args.capacity_requests)
    rate = capacity * 3
    start = time.perf_counter()
    url = f"{base}/classify"
    heavy, side = _open_loop_phase(
        url, rate, args.seconds, start, args.generator, args.h2load_max_clients
    )
    drain_s = _until_drained(base)
    calm_seconds = max(5.0, args.seconds / 2)
    light, _ = _open_loop_phase(
        url, capacity / 2, calm_seconds, start, args.generator, args.h2load_max_clients
    )
    phases = [
        _phase("3x capacity", rate, args.seconds, heavy),
        _phase("0.5x capacity (recovery)", capacity / 2, calm_seconds, light),
    ]
    over, calm = phases
    # h2load does not report headers: Retry-After is checked on every 429 of the side
    # stream, or of the run itself when aiohttp generated it (4290: a 429 without it).
    headed = side or heavy
    # 3x is of a capacity measured with 64 closed-loop clients. A worker whose in-flight
    # limit follows its answer rate (ADAPTIVE_CONCURRENCY) can take that load open-loop in
    # bigger batches: on a machine measured at 4,394 rps it answered 79,058 of 79,099
    # requests in 6 s, p99 454 ms. Load it answered in full within the bound was no excess.
    answered_all = over.ok == over.sent and (over.ok_p99_ms or 0) <= 2 * max_latency_ms
    checks = {
        "excess shed with 429 (or all of it answered within 2x MAX_LATENCY_MS)": over.shed > 0
        or answered_all,
        "every 429 carries Retry-After": all(s.status != 4290 for s in headed),
        f"429 answered within {SHED_FAST_MS:g} ms (p99)": (over.shed_p99_ms or 0) <= SHED_FAST_MS,
        f"accepted p99 <= 2x MAX_LATENCY_MS ({2 * max_latency_ms} ms)": (over.ok_p99_ms or 0)
        <= 2 * max_latency_ms,
        "no failures (5xx, connection errors) under overload": over.failed == 0,
        f"drained within {DRAIN_LIMIT_S:g} s of the load dropping": drain_s <= DRAIN_LIMIT_S,
        "recovered: nothing shed or failed at 0.5x": calm.shed == 0 and calm.failed == 0,
    }
    return {
        "capacity_rps": capacity,
        "generator": args.generator,
        "h2load_max_clients": args.h2load_max_clients,
        "side_stream_429s": sum(s.status in (429, 4290) for s in side),
        "drain_s": round(drain_s, 2),
        "phases": [asdict(p) for p in phases],
        "checks": checks,
    }


def _until_drained(base: str) -> float:
    """Seconds until a new connection is answered quickly again once the overload stops.

    Requests whose clients gave up still sit in the server's socket buffers and are read
    (and answered to no one) before anything newer; the recovery phase starts after them,
    and how long they took is reported (a CI run that started at once saw its first calm
    requests shed behind them)."""
    import httpx

    began = time.perf_counter()
    fast = 0
    # One client, a new connection per probe: ``httpx.get`` builds a client (and its TLS
    # context) per call, about 66 ms here on an idle machine, so the 50 ms bound measured
    # httpx, and a CI run on loaded cores read 31 s of "draining" from an idle service.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=DRAIN_LIMIT_S, limits=limits) as client:
        while fast < 3 and time.perf_counter() - began < 2 * DRAIN_LIMIT_S:
            sent = time.perf_counter()
            try:
                client.get(f"{base}/livez")
                fast = fast + 1 if time.perf_counter() - sent < 0.05 else 0
            except httpx.HTTPError:
                fast = 0
            time.sleep(0.1)
    return time.perf_counter() - began


def chaos(base: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    from domain.monitoring.prediction_log import LogKey
    from infrastructure.monitoring.prediction_logs import open_prediction_log

    capacity = _capacity(base, args.capacity_requests)
    deadline = time.monotonic() + 60
    while len(_workers(base)) < 2:  # both workers loaded and reporting
        if time.monotonic() > deadline:
            raise SystemExit("two workers never both served")
        time.sleep(0.2)
    runner = args.victim == "runner"
    if runner:
        # Every process of the server before the kill: with several runner workers, any
        # runner pid the fronts report that is not among them is the replacement.
        victim = int(_metadata(base)["runner"]["pid"])
        before = {p.pid for p in psutil.Process(server_pid).children(recursive=True)}
    else:
        before = _workers(base)
        victim = max(before)
    rate = capacity / 2
    start = time.perf_counter()
    killed_at: list[float] = []

    replaced: list[float] = []

    async def serving_pids(session: aiohttp.ClientSession) -> set[int]:
        """Workers by the model they report loaded (their pid on mlops_model_info); the
        runner by the pid the fronts' metadata gives once it scores again."""
        if runner:
            async with session.post(f"{base}/metadata", json={}) as reply:
                if reply.status != 200:
                    return set()
                described = (await reply.json()).get("runner") or {}
                return {int(described["pid"])} if described.get("loaded") else set()
        async with session.get(f"{base}/metrics") as reply:
            return {int(p) for p in WORKER.findall(await reply.text())}

    async def watch() -> None:
        """Until a new worker (or runner) serves."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.perf_counter() - start < args.seconds + 120:
                try:
                    found = await serving_pids(session)
                except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
                    found = set()
                if found - before:
                    replaced.append(time.perf_counter() - start - killed_at[0])
                    return
                await asyncio.sleep(0.2)

    async def scenario() -> list[Sample]:
        load = asyncio.create_task(_open_loop(f"{base}/classify", rate, args.seconds, start))
        await asyncio.sleep(args.seconds / 3)
        os.kill(victim, signal.SIGKILL)
        killed_at.append(time.perf_counter() - start)
        watcher = asyncio.create_task(watch())
        samples = await load
        await watcher
        return samples

    samples = uvloop.run(scenario())
    replaced_after = round(replaced[0], 2) if replaced else None
    phase = _phase(f"half capacity, one {args.victim} killed", rate, args.seconds, samples)
    answered = {s.request_id for s in samples if s.request_id}
    time.sleep(1.0)  # the surviving and restarted workers write their last records
    log = open_prediction_log("", Path(os.environ["MLOPS_HOME"]))
    key = LogKey(args.model, "champion", args.version)
    logged = {r.request_id for r in log.recent(key, len(answered) * 2 + 10_000)}
    lost = len(answered - logged)
    failed_share = phase.failed / max(phase.sent, 1)
    # Failures by when the request was sent: what the killed worker held fails at the
    # kill; once a replacement serves (plus a second for the pooled connections to the
    # dead worker to be dropped), nothing should.
    settled = killed_at[0] + (replaced[0] if replaced else float("inf")) + 1.0
    failed = [s for s in samples if s.status not in ANSWERED]
    # Before the kill: failures that ended before it (requests sent just before it and
    # held by the killed worker fail at the kill, as they should).
    failed_before_kill = sum(1 for s in failed if s.sent + s.ms / 1000 < killed_at[0])
    late = [s for s in failed if s.sent >= settled]
    failed_after_replacement = len(late)
    checks = {
        "fewer than 1% of requests failed": failed_share < 0.01,
        "a replacement worker served again": replaced_after is not None,
        "nothing failed once the replacement served": failed_before_kill == 0
        and failed_after_replacement == 0,
        "every answered prediction is in the log": lost == 0,
    }
    return {
        "capacity_rps": capacity,
        "killed": args.victim,
        "killed_pid": victim,
        "killed_at_s": round(killed_at[0], 2),
        "replacement_serving_after_s": replaced_after,
        "failed_share": round(failed_share, 4),
        "failed_before_kill": failed_before_kill,
        "failed_after_replacement": failed_after_replacement,
        # When and how the late ones failed (sent, seconds after the kill; status; ms).
        "late_failures": [
            [round(s.sent - killed_at[0], 2), s.status, round(s.ms, 1)] for s in late[:20]
        ],
        "answered_not_in_log": lost,
        "phases": [asdict(phase)],
        "checks": checks,
    }


def soak(base: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    capacity = _capacity(base, args.capacity_requests)
    rate = capacity * args.load_share
    start = time.perf_counter()
    rss: list[tuple[float, float]] = []
    generator_rss: list[float] = []  # this process: a generator that slows down skews latency
    warmup = min(60.0, args.seconds / 5)

    async def scenario() -> list[Sample]:
        url = f"{base}/classify"
        # h2load by default, as for overload: the Python generator's ~300 us a request on
        # the cores it shares with the server (a quarter of a core at 455 rps, measured)
        # left the one worker too little headroom at 80%, and 0.13% was shed in bursts
        # spread over the run.
        generate = (
            _open_loop(url, rate, args.seconds, start)
            if args.generator == "aiohttp"
            else _h2load(url, rate, args.seconds, start, args.h2load_max_clients)
        )
        load = asyncio.create_task(generate)
        while not load.done():
            rss.append((round(time.perf_counter() - start, 1), round(_rss_mib(server_pid), 1)))
            generator_rss.append(round(psutil.Process().memory_info().rss / 2**20, 1))
            # The samples kept so far are never freed: out of the collector's sight, its
            # full passes stay short. Without this a 10-minute run's generator fell 176 ms
            # behind its schedule (p99, last minute) and sent what it owed in bursts.
            gc.freeze()
            await asyncio.sleep(min(10.0, args.seconds / 10))
        return await load

    samples = uvloop.run(scenario())
    minute = min(60.0, args.seconds / 3)
    first = _phase("first minute", rate, minute, [s for s in samples if s.sent < minute])
    last = _phase(
        "last minute", rate, minute, [s for s in samples if s.sent >= args.seconds - minute]
    )
    whole = _phase("whole run", rate, args.seconds, samples)
    after_warmup = [m for t, m in rss if t >= warmup] or [m for _, m in rss]
    growth = (after_warmup[-1] - after_warmup[0]) / after_warmup[0] if after_warmup else 0.0
    growth_per_10_min = growth * 600.0 / max(args.seconds - warmup, 1.0)
    checks = {
        "0 errors": whole.failed == 0 and whole.shed == 0,
        "last-minute p99 within 1.5x the first minute's": (last.ok_p99_ms or 0)
        <= 1.5 * max(first.ok_p99_ms or 0, 1.0),
    }
    # Extrapolated from a short run, a few MiB of allocator noise reads as a leak.
    if args.seconds >= 300:
        checks["RSS growth after warm-up < 1% per 10 minutes"] = growth_per_10_min < 0.01
    return {
        "capacity_rps": capacity,
        "generator": args.generator,
        "h2load_max_clients": args.h2load_max_clients,
        "rate_rps": round(rate, 1),
        "troubled_windows": _troubled_windows(samples, SOAK_WINDOW_S),
        "rss_mib": rss,
        "rss_growth_per_10_min": round(growth_per_10_min, 4),
        "generator_rss_mib": generator_rss,
        "phases": [asdict(p) for p in (first, last, whole)],
        "checks": checks,
    }


SOAK_WINDOW_S = 10.0


def _troubled_windows(samples: list[Sample], window_s: float) -> list[dict[str, Any]]:
    """The windows in which something was shed or failed, with the latency and the
    generator's lateness there: when a long run sheds, whether it was a moment (a stall)
    or a trend (the load above what the service sustains)."""
    windows: dict[int, list[Sample]] = {}
    for sample in samples:
        windows.setdefault(int(sample.sent // window_s), []).append(sample)
    troubled = []
    for index, members in sorted(windows.items()):
        shed = sum(s.status in (429, 4290) for s in members)
        failed = sum(s.status not in ANSWERED for s in members)
        if shed or failed:
            ok = [s.ms for s in members if s.status == 200] or [0.0]
            troubled.append(
                {
                    "from_s": index * window_s,
                    "sent": len(members),
                    "shed": shed,
                    "failed": failed,
                    "ok_p99_ms": round(float(np.percentile(ok, 99)), 1),
                    "generator_late_p99_ms": round(
                        float(np.percentile([s.late_ms for s in members], 99)), 1
                    ),
                }
            )
    return troubled


EDGE_CONFIG = "deploy/haproxy/haproxy.cfg"


def _haproxy() -> str:
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if path is None:
        raise SystemExit("--edge needs haproxy (the Debian package; `make system-deps`)")
    return path


def _edge_env(
    service_port: int, workers: int, max_batch_size: int, queue_per_worker: int
) -> dict[str, str]:
    """The edge's settings as the README gives them: in flight, what fills every worker's
    batch; waiting, what a worker serves in about 3/4 of max_latency_ms (``make serve``'s
    EDGE_QUEUE_TABULAR and EDGE_QUEUE_TEXT)."""
    in_flight = workers * max_batch_size
    return {
        "EDGE_BIND": f"127.0.0.1:{free_port()}",
        "EDGE_METRICS_BIND": f"127.0.0.1:{free_port()}",
        "SERVICE_ADDR": f"127.0.0.1:{service_port}",
        "EDGE_MAX_CONN": os.environ.get("EDGE_MAX_CONN", str(in_flight)),
        "EDGE_QUEUE": os.environ.get("EDGE_QUEUE", str(workers * queue_per_worker)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("overload", "chaos", "soak"))
    parser.add_argument("--seconds", type=float, help="load duration (default per mode)")
    parser.add_argument(
        "--capacity-requests",
        type=int,
        help="requests of the capacity measurement (default 3,000; soak 20,000: its 80%% is "
        "of what the service sustains, and 3,000 requests, 4 s, read 20%% above that)",
    )
    parser.add_argument(
        "--load-share", type=float, default=0.8, help="soak: share of the measured capacity"
    )
    parser.add_argument("--home", type=Path, help="MLOPS_HOME (default: $MLOPS_HOME or ./.mlops)")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--kind", choices=sorted(TARGETS), default="tabular")
    parser.add_argument(
        "--model",
        help="a model already promoted in the store (default: train the kind's demo model "
        "unless it has a champion)",
    )
    parser.add_argument(
        "--topology", choices=("single", "split"), default="single", help="text: the topology"
    )
    parser.add_argument(
        "--victim",
        choices=("worker", "runner"),
        default="worker",
        help="chaos: kill an HTTP worker, or the model runner (text, split topology)",
    )
    parser.add_argument(
        "--split-cores",
        action="store_true",
        help="pin the server to the first core and this generator to the others (taskset), "
        "so the two stop competing for the same cores",
    )
    parser.add_argument(
        "--generator",
        choices=("h2load", "aiohttp"),
        default="h2load",
        help="overload and soak: the open-loop load generator (h2load: Debian's nghttp2-client)",
    )
    parser.add_argument(
        "--h2load-max-clients",
        type=int,
        default=H2LOAD_MAX_CLIENTS,
        help="at most this many h2load connections (more: the connection storm of a fast "
        "machine, which the adaptive in-flight limit is measured against)",
    )
    parser.add_argument(
        "--edge",
        action="store_true",
        help="send the load through HAProxy (deploy/haproxy/haproxy.cfg) in front of the "
        "service, which refuses what exceeds EDGE_MAX_CONN in flight + EDGE_QUEUE waiting",
    )
    args = parser.parse_args(argv)
    args.seconds = args.seconds or {"overload": 20.0, "chaos": 30.0, "soak": 600.0}[args.mode]
    args.capacity_requests = args.capacity_requests or (20_000 if args.mode == "soak" else 3000)
    suffix = ("" if args.kind == "tabular" else f"_text_{args.topology}") + (
        "_edge" if args.edge else ""
    )
    default_output = f"benchmarks/results/reliability_{args.mode}{suffix}.json"
    output = args.output or REPO_ROOT / default_output

    global TARGET
    TARGET = TARGETS[args.kind]
    if args.kind == "text" and args.victim == "runner" and args.topology != "split":
        raise SystemExit("--victim runner needs --topology split")
    home = (args.home or Path(os.environ.get("MLOPS_HOME", REPO_ROOT / ".mlops"))).resolve()
    env = use_stores(home)
    from infrastructure.config.settings import ServingSettings, TextServingSettings

    if args.model is None:
        args.model = TARGET.model
        ensure_champion(TARGET.model, TARGET.config)
    prefix = TARGET.env_prefix
    env[f"{prefix}MODEL_NAME"] = args.model
    env[f"{prefix}WORKERS"] = "2" if args.mode == "chaos" else "1"
    if args.kind == "text":
        env[f"{prefix}TOPOLOGY"] = args.topology
    settings = TextServingSettings() if args.kind == "text" else ServingSettings()
    max_latency_ms = settings.max_latency_ms
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [tool("bentoml"), "serve", TARGET.service, "--host", "127.0.0.1", "--port", str(port)]
    cores: dict[str, list[int]] | None = None
    if args.split_cores:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            raise SystemExit("--split-cores needs two cores or more")
        cores = {"server": available[:1], "generator": available[1:]}
        # The server and every worker it starts inherit the core; this process moves off it.
        command = ["taskset", "-c", str(available[0]), *command]
        os.sched_setaffinity(0, cores["generator"])
    log = home / f"reliability-{args.kind}-{args.mode}.log"
    edge: dict[str, str] = {}
    with contextlib.ExitStack() as running:
        process = running.enter_context(
            server_process(command, env, base + "/readyz", log, REPO_ROOT)
        )
        if args.edge:
            workers = int(env[f"{prefix}WORKERS"])
            edge = _edge_env(port, workers, settings.max_batch_size, TARGET.edge_queue)
            edge_command = [_haproxy(), "-db", "-f", str(REPO_ROOT / EDGE_CONFIG)]
            if cores is not None:  # the edge shares the server's core, as in its pod
                edge_command = ["taskset", "-c", str(cores["server"][0]), *edge_command]
            base = f"http://{edge['EDGE_BIND']}"
            edge_log = home / f"reliability-{args.kind}-{args.mode}-edge.log"
            running.enter_context(
                server_process(edge_command, edge, base + "/readyz", edge_log, REPO_ROOT)
            )
        # The version the server loaded: the prediction log is keyed by it.
        args.version = _metadata(base)["variants"]["champion"]["model_version"]
        if args.mode == "overload":
            result = overload(base, args, max_latency_ms)
        elif args.mode == "chaos":
            result = chaos(base, args, process.pid)
        else:
            result = soak(base, args, process.pid)

    print(f"{args.mode}: capacity {result['capacity_rps']} rps (64 closed-loop clients)")
    header = (
        f"{'phase':<36}{'rate':>8}{'sent':>8}{'ok':>8}{'429':>7}{'failed':>8}"
        f"{'ok p50':>9}{'ok p99':>9}{'429 p99':>9}{'gen late p99':>14}"
    )
    print(header)
    print("-" * len(header))
    for p in result["phases"]:
        print(
            f"{p['name']:<36}{p['rate']:>8}{p['sent']:>8}{p['ok']:>8}{p['shed']:>7}"
            f"{p['failed']:>8}{p['ok_p50_ms'] or '-':>9}{p['ok_p99_ms'] or '-':>9}"
            f"{p['shed_p99_ms'] or '-':>9}{p['generator_late_p99_ms'] or '-':>14}"
        )
    for name, met in result["checks"].items():
        print(f"[{'PASS' if met else 'MISS'}] {name}")
    extras = {k: v for k, v in result.items() if k not in ("phases", "checks", "rss_mib")}
    print(f"[info] {extras}")
    payload = {
        "benchmark": f"reliability_{args.mode}",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": sys.version.split()[0],
        "seconds": args.seconds,
        "max_latency_ms": max_latency_ms,
        "kind": args.kind,
        "model": args.model,
        "topology": args.topology if args.kind == "text" else None,
        "cores": cores or "shared",
        "edge": {k: v for k, v in edge.items() if k.startswith("EDGE_")} or None,
        **result,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2))
    print(f"wrote {output}")
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
