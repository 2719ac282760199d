"""Closed-loop HTTP load on loopback: N clients, each sending its next request on reply.

Shared by the serving benchmarks. One asyncio event loop with aiohttp keeps the client's own
CPU use small, which matters on a 2-core machine where client and server share the cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

BodyFactory = Callable[[int], bytes]
MAX_RETRY_WAIT_S = 5.0


@dataclass(frozen=True)
class LevelResult:
    server: str
    clients: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_statuses: dict[str, int]
    mean_batch_size: float | None = None
    # 429s: load the server shed on arrival (with Retry-After), counted apart from errors.
    shed: int = 0
    # CPU the load generator itself used, in cores: on a small machine it competes with
    # the server it measures, so it bounds how close a server can get to its model's limit.
    client_cpu_cores: float | None = None
    # Share of the level's wall time the model spent scoring batches (from the service's
    # `mlops_batch_seconds`): under 1 at saturation, the serving path left it idle.
    model_busy_share: float | None = None


async def _run_level(
    url: str, body: BodyFactory, clients: int, requests: int
) -> tuple[list[float], dict[str, int], float, float, int]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    shed = 0
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            nonlocal shed
            for index in counter:
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body(index), headers=headers) as reply:
                        await reply.read()
                        status = reply.status
                        retry_after = reply.headers.get("retry-after")
                except (aiohttp.ClientError, TimeoutError) as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                elif status == 429:
                    shed += 1
                    # A well-behaved client waits as told before its next request; one that
                    # retried at once would measure its own retry storm, not the server.
                    await asyncio.sleep(min(float(retry_after or 0), MAX_RETRY_WAIT_S))
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - started
        return latencies, errors, seconds, (time.process_time() - cpu_started) / seconds, shed


def run_level(server: str, url: str, body: BodyFactory, clients: int, requests: int) -> LevelResult:
    latencies, errors, seconds, cpu_cores, shed = asyncio.run(
        _run_level(url, body, clients, requests)
    )
    ms = np.array(latencies) * 1000.0 if latencies else np.array([float("nan")])
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    return LevelResult(
        server=server,
        clients=clients,
        requests=requests,
        errors=sum(errors.values()),
        seconds=round(seconds, 3),
        rps=round(len(latencies) / seconds, 1),
        p50_ms=round(p50, 2),
        p95_ms=round(p95, 2),
        p99_ms=round(p99, 2),
        error_statuses=errors,
        client_cpu_cores=round(cpu_cores, 2),
        shed=shed,
    )


def sweep(
    server: str,
    url: str,
    body: BodyFactory,
    levels: Sequence[int],
    requests: int,
    warmup: int,
) -> list[LevelResult]:
    run_level(server, url, body, max(levels), warmup)
    results = []
    for clients in levels:
        result = run_level(server, url, body, clients, max(requests, clients * 20))
        print(
            f"  {server:<14} clients={clients:<4} rps={result.rps:<8} "
            f"p50={result.p50_ms}ms p99={result.p99_ms}ms errors={result.errors}",
            flush=True,
        )
        results.append(result)
    return results


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(url: str, timeout_s: float = 120.0, process: Any = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout_s}s")


@contextmanager
def server_process(
    command: list[str], env: dict[str, str], ready_url: str, log: Path, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            wait_until_ready(ready_url, process=process)
            yield process
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def print_table(results: Sequence[LevelResult]) -> None:
    batches = any(r.mean_batch_size is not None for r in results)
    header = (
        f"{'server':<18}{'clients':>8}{'rps':>10}{'p50 ms':>10}{'p95 ms':>10}"
        f"{'p99 ms':>10}{'errors':>8}{'client cpu':>12}"
        + (f"{'batch':>8}{'busy':>7}" if batches else "")
    )
    print(header)
    print("-" * len(header))
    for r in results:
        batch = "" if r.mean_batch_size is None else f"{r.mean_batch_size:.1f}"
        busy = "" if r.model_busy_share is None else f"{r.model_busy_share:.2f}"
        print(
            f"{r.server:<18}{r.clients:>8}{r.rps:>10.1f}{r.p50_ms:>10.2f}{r.p95_ms:>10.2f}"
            f"{r.p99_ms:>10.2f}{r.errors:>8}{r.client_cpu_cores or 0:>12.2f}"
            + (f"{batch:>8}{busy:>7}" if batches else "")
        )


def write_json(path: Path, payload: dict[str, Any], results: Sequence[LevelResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
