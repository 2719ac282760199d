"""The edge (deploy/haproxy/haproxy.cfg) run for real: HAProxy from Debian in front of a
real HTTP server on 127.0.0.1 that answers slowly, so the edge's limits can be filled on
purpose. What it answers itself must be what the service's OpenAPI document declares."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from infrastructure.serving.openapi import ERROR_STATUSES, RETRY_AFTER_STATUSES, ErrorResponse
from tests.conftest import REPO_ROOT
from tests.support.system_tools import free_port, require_tool

CONFIG = REPO_ROOT / "deploy" / "haproxy" / "haproxy.cfg"
ANSWER_S = 0.3


class _SlowService(BaseHTTPRequestHandler):
    """Answers every request after ANSWER_S with what it was sent (path, forwarded-for)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        time.sleep(ANSWER_S)
        body = json.dumps(
            {"path": self.path, "forwarded_for": self.headers.get("x-forwarded-for")}
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _service() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowService)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _edge(service_port: int, tmp_path: Path, **settings: str) -> Iterator[str]:
    binary = require_tool("haproxy", "haproxy")
    port = free_port()
    env = {
        **os.environ,
        "EDGE_BIND": f"127.0.0.1:{port}",
        "EDGE_METRICS_BIND": f"127.0.0.1:{free_port()}",
        "SERVICE_ADDR": f"127.0.0.1:{service_port}",
        **settings,
    }
    log = (tmp_path / "haproxy.log").open("w")
    process = subprocess.Popen(
        [binary, "-db", "-f", str(CONFIG)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "haproxy.log").read_text()
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@contextmanager
def _client(tmp_path: Path, **settings: str) -> Iterator[httpx.Client]:
    """A client of an edge in front of the slow service."""
    with (
        _service() as port,
        _edge(port, tmp_path, **settings) as edge,
        httpx.Client(base_url=edge, timeout=10) as client,
    ):
        yield client


def _declared(reply: httpx.Response) -> None:
    """An answer of the edge's own: the ErrorResponse shape, Retry-After where declared."""
    assert reply.status_code in ERROR_STATUSES, reply.status_code
    assert reply.headers["content-type"] == "application/json"
    ErrorResponse.model_validate_json(reply.content)
    if reply.status_code in RETRY_AFTER_STATUSES:
        assert int(reply.headers["retry-after"]) >= 1


def test_the_config_is_valid_with_its_defaults_and_as_compose_runs_it() -> None:
    binary = require_tool("haproxy", "haproxy")
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    edges = {name: s for name, s in compose.items() if name.endswith("-edge")}
    assert set(edges) == {"tabular-edge", "text-edge"}
    for name, edge in [("defaults", {"environment": {}}), *edges.items()]:
        env = {**os.environ, **edge["environment"]}
        checked = subprocess.run(
            [binary, "-c", "-f", str(CONFIG)], env=env, capture_output=True, text=True
        )
        assert checked.returncode == 0, (name, checked.stdout + checked.stderr)
        if name != "defaults":
            target, _, port = edge["environment"]["SERVICE_ADDR"].partition(":")
            assert target in compose and port == "3000", name
            [mount] = edge.get("volumes", [])
            assert (REPO_ROOT / mount.split(":")[0]).resolve() == CONFIG


def test_beyond_in_flight_and_queue_the_edge_answers_429_at_once(tmp_path: Path) -> None:
    with _client(tmp_path, EDGE_MAX_CONN="2", EDGE_QUEUE="2") as client:

        def classify(_: int) -> tuple[httpx.Response, float]:
            sent = time.perf_counter()
            reply = client.post("/classify", json={"rows": [[1, 2, 3, 4]]})
            return reply, time.perf_counter() - sent

        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(classify, range(12)))
        served = [r for r, _ in replies if r.status_code == 200]
        refused = [(r, s) for r, s in replies if r.status_code != 200]
        # 2 in the service and 2 waiting; the other 8 were refused.
        assert len(served) == 4 and len(refused) == 8, [r.status_code for r, _ in replies]
        for reply, seconds in refused:
            assert reply.status_code == 429
            _declared(reply)
            assert "EDGE_QUEUE" in reply.json()["error"]
            assert seconds < ANSWER_S  # not queued behind the service's work
        # The service sees the client's address, not the edge's.
        assert served[0].json()["forwarded_for"] == "127.0.0.1"


def test_health_metrics_and_admin_pass_while_the_queue_is_full(tmp_path: Path) -> None:
    # EDGE_QUEUE=0: the queue is always "full", so every prediction is refused.
    with _client(tmp_path, EDGE_MAX_CONN="1", EDGE_QUEUE="0") as client:
        assert client.post("/classify", json={}).status_code == 429
        for path in ("/readyz", "/livez", "/metrics", "/ui"):
            assert client.get(path).status_code == 200, path
        assert client.post("/admin/reload", json={}).status_code == 200


def test_a_service_that_is_down_gets_a_declared_503(tmp_path: Path) -> None:
    with _edge(free_port(), tmp_path, EDGE_QUEUE_TIMEOUT="2s") as edge:
        reply = httpx.post(f"{edge}/classify", json={"rows": []}, timeout=30)
    assert reply.status_code == 503
    _declared(reply)


def test_a_trickled_body_gets_a_declared_408(tmp_path: Path) -> None:
    with _service() as port, _edge(port, tmp_path, EDGE_BODY_TIMEOUT="1s") as edge:
        host, _, edge_port = edge.removeprefix("http://").partition(":")
        with socket.create_connection((host, int(edge_port)), timeout=10) as raw:
            raw.sendall(
                b"POST /classify HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\n"
                b"content-length: 100\r\n\r\n{"
            )
            answer = raw.recv(65536).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 408"), head
    ErrorResponse.model_validate_json(body)


@pytest.mark.parametrize("path", ["/classify", "/predict", "/feedback", "/jobs/submit"])
def test_the_prediction_paths_are_the_ones_limited(path: str, tmp_path: Path) -> None:
    with _service() as port, _edge(port, tmp_path, EDGE_MAX_CONN="1", EDGE_QUEUE="0") as edge:
        assert httpx.post(f"{edge}{path}", json={}, timeout=10).status_code == 429
