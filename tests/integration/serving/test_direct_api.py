"""The direct path (``DIRECT_API``) answers classify/predict exactly as BentoML's full path.

The same requests go to a service with the direct path on, then to one with it off, over
the same stored model; every answer must match: status, body (request ids and timings
aside), and the headers clients read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infrastructure.serving.direct_api import DirectApis
from tests.support.serving import asgi_client, tabular_service, text_service, train_and_promote

pytestmark = pytest.mark.slow

MODEL = "direct-iris"
SETOSA = [5.1, 3.5, 1.4, 0.2]
NAMED = {
    "sepal_length_cm": 6.7,
    "sepal_width_cm": 3.0,
    "petal_length_cm": 5.2,
    "petal_width_cm": 2.3,
}
# Not API calls: BentoML answers 405 (other methods) and a redirect (trailing slash).
PROBES = [("GET", "/classify"), ("TRACE", "/predict"), ("PUT", "/classify"), ("POST", "/classify/")]
HEADERS = ("content-type", "x-model-variant", "x-model-version", "retry-after")
# (endpoint, body, headers): good requests, and bad ones the direct path hands back.
TABULAR_REQUESTS: list[tuple[str, Any, dict[str, str]]] = [
    ("classify", {"rows": [SETOSA]}, {}),
    ("classify", {"rows": [SETOSA, [6.7, 3.0, 5.2, 2.3]]}, {"x-routing-key": "user-1"}),
    ("predict", NAMED, {}),
    ("predict", {"instances": [NAMED, NAMED]}, {}),
    ("classify", {"rows": [SETOSA], "extra": 1}, {}),  # BentoML ignores unknown fields
    ("classify", {"rows": []}, {}),
    ("classify", {"rows": [[1.0, 2.0]]}, {}),
    ("classify", {"rows": [["a", 1.0, 1.0, 1.0]]}, {}),
    ("classify", {"rows": [SETOSA] * 9}, {}),
    ("classify", {}, {}),
    ("classify", "not json", {}),
    ("classify", [1, 2], {}),
    ("predict", {"sepal_length_cm": 1.0}, {}),
    ("predict", {"instances": []}, {}),
    ("predict", {**NAMED, "petal_width_cm": "wide"}, {}),
]
TEXT_REQUESTS: list[tuple[str, Any, dict[str, str]]] = [
    ("classify", {"texts": ["a gorgeous , witty , seductive movie ."]}, {}),
    ("classify", {"texts": ["dull", "   fine   "]}, {"x-routing-key": "k"}),
    ("predict", {"text": "the plot is nothing but boilerplate ."}, {}),
    ("predict", {"texts": ["one", "two"]}, {}),
    ("classify", {"texts": []}, {}),
    ("classify", {"texts": ["   "]}, {}),
    ("classify", {"texts": ["x" * 500]}, {}),
    ("classify", {"texts": [1]}, {}),
    ("predict", {"text": "a", "texts": ["b"]}, {}),
    ("predict", {}, {}),
]


def _masked(value: Any) -> Any:
    """Request ids and timings differ between any two answers."""
    if isinstance(value, dict):
        return {
            key: "*" if key in ("request_id", "latency_ms") else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


@pytest.fixture
def direct_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each request the direct path saw, whether it answered (False: handed back)."""
    seen: list[bool] = []
    answer = DirectApis.answer

    async def counted(self: DirectApis, endpoint: str, scope: Any, body: bytes) -> Any:
        result = await answer(self, endpoint, scope, body)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(DirectApis, "answer", counted)
    return seen


def _answers(service: Any, requests: list[tuple[str, Any, dict[str, str]]]) -> list[Any]:
    answers: list[Any] = []
    with asgi_client(service) as client:
        for endpoint, body, headers in requests:
            if isinstance(body, str):
                response = client.post(
                    f"/{endpoint}",
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                )
            else:
                response = client.post(f"/{endpoint}", json=body, headers=headers)
            answers.append(
                (
                    endpoint,
                    response.status_code,
                    _masked(response.json()),
                    {name: response.headers.get(name) for name in HEADERS},
                )
            )
        # Only POST on the exact path is an API call (the direct path hands the rest on).
        for method, path in PROBES:
            response = client.request(method, path, json={}, follow_redirects=False)
            answers.append((method, path, response.status_code))
    return answers


def _compare_paths(
    build: Callable[..., Any],
    settings: dict[str, Any],
    requests: list[tuple[str, Any, dict[str, str]]],
    valid: int,
    direct_answers: list[bool],
) -> list[Any]:
    """The first ``valid`` requests are answered by the direct path, the rest handed back;
    with DIRECT_API=false none reaches it; both services answer every request alike."""
    direct = _answers(build(**settings), requests)
    handed_on = len(requests) - valid + len(PROBES)
    assert direct_answers == [True] * valid + [False] * handed_on
    full = _answers(build(**settings, direct_api=False), requests)
    assert len(direct_answers) == valid + handed_on, "DIRECT_API=false: BentoML answered"
    for answered, expected in zip(direct, full, strict=True):
        assert answered == expected
    statuses = [status for _, status, _, _ in direct[: len(requests)]]
    assert statuses[:valid] == [200] * valid and set(statuses[valid:]) == {400}
    assert [status for _, _, status in direct[len(requests) :]] == [405, 405, 405, 307]
    return direct


def test_tabular_direct_path_answers_as_the_full_path(
    tmp_path: Path, direct_answers: list[bool]
) -> None:
    train_and_promote(tmp_path / "home", MODEL)
    settings = {"model_name": MODEL, "max_instances": 8, "routing_header": "x-routing-key"}
    direct = _compare_paths(tabular_service, settings, TABULAR_REQUESTS, 5, direct_answers)
    assert direct[0][3]["x-model-variant"] == "champion"


def test_text_direct_path_answers_as_the_full_path(
    text_champion: str, direct_answers: list[bool]
) -> None:
    settings = {
        "model_name": text_champion,
        "max_text_chars": 200,
        "max_instances": 4,
        "warmup_batch_sizes": (1, 4),
        "routing_header": "x-routing-key",
    }
    _compare_paths(text_service, settings, TEXT_REQUESTS, 4, direct_answers)


def _middleware_order(**settings: Any) -> list[str]:
    app = tabular_service(model_name=MODEL, **settings).to_asgi()
    return [m.cls.__name__ for m in app.user_middleware]


def test_the_guard_answers_before_bentomls_timeout_and_tracing_middlewares(
    tmp_path: Path,
) -> None:
    """The direct path skips BentoML's timeout and OpenTelemetry middlewares (the guard has
    its own 504); the access log and request metrics still see every request, and the full
    path (tracing on) keeps BentoML's order."""
    train_and_promote(tmp_path / "home", MODEL)
    guard, timeout, tracing = (
        "RequestGuardMiddleware",
        "TimeoutMiddleware",
        "OpenTelemetryMiddleware",
    )
    direct = _middleware_order()
    assert direct.index(guard) < direct.index(tracing) < direct.index(timeout)
    logged = _middleware_order(access_log=True, request_metrics=True)
    assert logged.index("RunnerTrafficMetricsMiddleware") < logged.index(guard)
    assert logged.index("AccessLogMiddleware") < logged.index(guard) < logged.index(timeout)
    for full in (_middleware_order(direct_api=False), _middleware_order(tracing=True)):
        assert full.index(tracing) < full.index(timeout) < full.index(guard)
