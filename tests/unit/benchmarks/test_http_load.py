"""The load generator's lean HTTP/1.1 client against a real uvicorn server on loopback:
statuses are counted as the benchmarks read them, closed connections are reopened, and a
server that is not there is an error, not a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.http_load import free_port, run_level


async def echo(request: Request) -> Response:
    body = await request.body()
    answer = request.query_params.get("answer", "200")
    headers = {"retry-after": "0"} if answer == "429" else {}
    if request.query_params.get("close"):
        headers["connection"] = "close"
    return Response(body, status_code=int(answer), headers=headers)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


def _body(index: int) -> bytes:
    return b'{"i": %d}' % index


def test_every_request_is_answered_and_timed(server: str) -> None:
    result = run_level("echo", f"{server}/echo", _body, clients=4, requests=200)
    assert (result.requests, result.errors, result.shed) == (200, 0, 0)
    assert result.rps > 0 and result.p99_ms >= result.p50_ms > 0


def test_shed_and_failed_answers_are_counted_apart(server: str) -> None:
    shed = run_level("x", f"{server}/echo?answer=429", _body, clients=2, requests=20)
    assert (shed.shed, shed.errors) == (20, 0)
    failed = run_level("x", f"{server}/echo?answer=503", _body, clients=2, requests=20)
    assert failed.errors == 20 and failed.error_statuses == {"503": 20}


def test_a_connection_the_server_closes_is_reopened(server: str) -> None:
    result = run_level("x", f"{server}/echo?close=1", _body, clients=2, requests=40)
    assert (result.errors, result.shed) == (0, 0)


def test_no_server_is_an_error_per_request() -> None:
    result = run_level("x", f"http://127.0.0.1:{free_port()}/echo", _body, clients=2, requests=6)
    assert result.errors == 6 and set(result.error_statuses) == {"ConnectionRefusedError"}
