"""Closed-loop HTTP load on loopback: N clients, each sending its next request on reply.

Shared by the serving benchmarks. One asyncio event loop with a lean HTTP/1.1 client
(``_Connection``) keeps the client's own CPU use small, which matters on a 2-core machine
where client and server share the cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httptools
import numpy as np

BodyFactory = Callable[[int], bytes]
MAX_RETRY_WAIT_S = 5.0
# As aiohttp's total timeout was: a reply later than this counts as an error.
REPLY_TIMEOUT_S = 60.0


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


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of one closed-loop client: a request at a time.

    Why not aiohttp (the client before): on a 2-core machine the load generator shares the
    cores with the server it measures, and aiohttp's client cost about 300 us of CPU per
    request, as much as the text service's own event loop. Between two batches the client
    had 64 replies to read and 64 requests to write before the next batch could fill, which
    kept the model idle for that long. Here a request is one prepared write and its reply
    goes through httptools' parser (the one uvicorn uses): what is left is the syscalls.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reply: asyncio.Future[tuple[int, bytes | None]] | None = None
        self._retry_after: bytes | None = None
        self.closed = False

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    # -- httptools callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._retry_after = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value

    def on_message_complete(self) -> None:
        reply = self._reply
        if reply is not None and not reply.done():
            reply.set_result((self._parser.get_status_code(), self._retry_after))
        if not self._parser.should_keep_alive():
            self.close()

    # -- the client's side ---------------------------------------------------------------
    async def request(self, data: bytes, timeout_s: float) -> tuple[int, bytes | None]:
        """The reply's status and Retry-After; raises what broke the connection."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[tuple[int, bytes | None]] = loop.create_future()
        self._reply = reply
        self._transport.write(data)
        timer = loop.call_later(timeout_s, self._fail, TimeoutError("no reply in time"))
        try:
            return await reply
        finally:
            timer.cancel()
            self._reply = None

    def _fail(self, error: Exception) -> None:
        reply = self._reply
        if reply is not None and not reply.done():
            reply.set_exception(error)
            self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


async def _run_level(
    url: str, body: BodyFactory, clients: int, requests: int
) -> tuple[list[float], dict[str, int], float, float, int]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    shed = 0
    counter = iter(range(requests))
    target = urllib.parse.urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {target.netloc}\r\n"
        "content-type: application/json\r\ncontent-length: "
    ).encode()
    loop = asyncio.get_running_loop()

    async def client() -> None:
        nonlocal shed
        connection: _Connection | None = None
        try:
            for index in counter:
                payload = body(index)
                started = time.perf_counter()
                try:
                    if connection is None or connection.closed:
                        _, connection = await loop.create_connection(_Connection, host, port)
                    status, retry_after = await connection.request(
                        b"%s%d\r\n\r\n%s" % (head, len(payload), payload), REPLY_TIMEOUT_S
                    )
                except (OSError, httptools.HttpParserError, TimeoutError) as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    connection = None
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
        finally:
            if connection is not None:
                connection.close()

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
    command: list[str],
    env: dict[str, str],
    ready_url: str,
    log: Path,
    cwd: Path,
    cpus: set[int] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The server, started and ready; on ``cpus`` only (it and its children) when given."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
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
