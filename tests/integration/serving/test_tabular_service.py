"""The tabular service through ``Service.to_asgi()``: every endpoint, bad input, /metrics."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pytest
from starlette.testclient import TestClient

from infrastructure.config.settings import ServingSettings
from infrastructure.serving.registry_view import ServiceRegistryView
from infrastructure.serving.tabular_service import build_tabular_service
from tests.support.serving import (
    asgi_client,
    metric_total,
    tabular_service,
    train_and_promote,
    variant_stats,
)

pytestmark = pytest.mark.slow

MODEL = "serve-iris"
FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


@pytest.fixture(scope="module")
def iris_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("serve-iris")
    train_and_promote(home, MODEL)
    return home


@pytest.fixture(scope="module")
def client(iris_home: Path) -> Iterator[TestClient]:
    service = tabular_service(
        model_name=MODEL, max_instances=8, max_body_bytes=4096, drift_every=10
    )
    with asgi_client(service) as test_client:
        yield test_client


def _named(row: list[float]) -> dict[str, float]:
    return dict(zip(FEATURES, row, strict=True))


def _champion_stats(client: TestClient) -> dict[str, Any]:
    return variant_stats(client)


def test_classify_batches_rows_and_returns_ids(client: TestClient) -> None:
    response = client.post("/classify", json={"rows": [SETOSA, VIRGINICA]})
    assert response.status_code == 200, response.text
    first, second = response.json()
    assert (first["label"], second["label"]) == ("setosa", "virginica")
    assert first["label_id"] == 0 and second["label_id"] == 2
    assert math.isclose(sum(first["probabilities"].values()), 1.0, rel_tol=1e-6)
    assert first["probability"] == max(first["probabilities"].values())
    assert first["request_id"] != second["request_id"]
    assert (first["model_version"], first["variant"]) == ("1", "champion")
    assert response.headers["x-model-variant"] == "champion"
    assert response.headers["x-model-version"] == "1"


def test_predict_single_and_many_named_instances(client: TestClient) -> None:
    single = client.post("/predict", json=_named(SETOSA))
    assert single.status_code == 200, single.text
    body = single.json()
    assert body["model_name"] == MODEL
    assert [(p["label"], p["model_version"]) for p in body["predictions"]] == [("setosa", "1")]
    assert body["predictions"][0]["unknown_categories"] == {}

    many = client.post("/predict", json={"instances": [_named(SETOSA), _named(VIRGINICA)]})
    assert [p["label"] for p in many.json()["predictions"]] == ["setosa", "virginica"]


def test_metadata_describes_model_features_and_limits(client: TestClient) -> None:
    meta = client.post("/metadata").json()
    assert meta["model_name"] == MODEL and meta["alias"] == "champion"
    assert meta["metrics"]["accuracy"] >= 0.9
    assert [f["name"] for f in meta["features"]] == FEATURES
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    assert meta["serving"]["max_instances"] == 8
    assert meta["variants"]["champion"]["model_version"] == "1"


def test_feedback_updates_rolling_accuracy_gauge(client: TestClient) -> None:
    rows = client.post("/classify", json={"rows": [SETOSA, VIRGINICA]}).json()
    right = client.post("/feedback", json={"request_id": rows[0]["request_id"], "label": "setosa"})
    assert right.status_code == 200, right.text
    assert right.json()["correct"] is True
    assert (right.json()["variant"], right.json()["model_version"]) == ("champion", "1")
    wrong = client.post("/feedback", json={"request_id": rows[1]["request_id"], "label": "setosa"})
    assert wrong.json()["correct"] is False

    again = client.post("/feedback", json={"request_id": rows[0]["request_id"], "label": "setosa"})
    assert again.status_code == 404 and "request_id" in again.text
    unknown = client.post("/feedback", json={"request_id": "0" * 32, "label": "setosa"})
    assert unknown.status_code == 404
    bad_label = client.post("/feedback", json={"request_id": rows[1]["request_id"], "label": "x"})
    assert bad_label.status_code == 400 and "label" in bad_label.text

    champion = _champion_stats(client)
    assert champion["labelled"] >= 2
    assert (
        metric_total(client, "mlops_rolling_accuracy", model=MODEL, variant="champion")
        == champion["rolling_accuracy"]
    )


BAD_CLASSIFY: list[tuple[str, bytes, int, str]] = [
    ("string for a number", b'{"rows": [[5.1, "3.5", 1.4, 0.2]]}', 400, "valid number"),
    ("boolean for a number", b'{"rows": [[5.1, true, 1.4, 0.2]]}', 400, "valid number"),
    ("NaN", b'{"rows": [[NaN, 3.5, 1.4, 0.2]]}', 400, "finite number"),
    ("infinity", b'{"rows": [[1e999, 3.5, 1.4, 0.2]]}', 400, "finite number"),
    ("overflowing number", b'{"rows": [[1e308, 3.5, 1.4, 0.2]]}', 400, "less than or equal"),
    ("invalid UTF-8", b'{"rows": [[5.1, 3.5, 1.4, "\xff"]]}', 400, "Invalid JSON"),
    ("deeply nested", b'{"rows": ' + b"[" * 1500 + b"]" * 1500 + b"}", 400, "Invalid JSON"),
    ("null row", b'{"rows": [null]}', 400, "rows"),
    ("too few values", b'{"rows": [[5.1, 3.5, 1.4]]}', 400, "rows"),
    ("too many values", b'{"rows": [[5.1, 3.5, 1.4, 0.2, 9]]}', 400, "at most 4 items"),
    ("empty rows", b'{"rows": []}', 400, "at least 1 item"),
    ("rows over the limit", json.dumps({"rows": [SETOSA] * 9}).encode(), 400, "at most 8"),
    ("row not a list", b'{"rows": [5.1]}', 400, "rows"),
    ("missing field", b"{}", 400, "rows"),
    ("not JSON", b"rows=1", 400, "Invalid JSON"),
    ("truncated JSON", b'{"rows": [[5.1', 400, "Invalid JSON"),
    ("JSON array body", b"[[5.1, 3.5, 1.4, 0.2]]", 400, "error"),
    ("oversized body", b'{"rows": [' + b"[1,2,3,4]," * 600 + b"[1,2,3,4]]}", 413, "limit"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "message"), BAD_CLASSIFY, ids=[c[0] for c in BAD_CLASSIFY]
)
def test_bad_classify_input_is_a_named_4xx(
    client: TestClient, case: str, body: bytes, status: int, message: str
) -> None:
    served_before = metric_total(client, "mlops_predictions_total", model=MODEL)
    errors_before = metric_total(
        client, "mlops_request_errors_total", model=MODEL, endpoint="classify"
    )

    response = client.post("/classify", content=body, headers={"content-type": "application/json"})

    assert response.status_code == status, response.text
    assert message in response.text
    assert metric_total(client, "mlops_predictions_total", model=MODEL) == served_before
    errors_after = metric_total(
        client, "mlops_request_errors_total", model=MODEL, endpoint="classify"
    )
    assert errors_after == errors_before + 1
    assert client.post("/classify", json={"rows": [SETOSA]}).status_code == 200


BAD_PREDICT: list[tuple[str, Any, str]] = [
    ("unknown field", {**_named(SETOSA), "colour": "red"}, "colour"),
    (
        "missing field",
        {k: v for k, v in _named(SETOSA).items() if k != "petal_width_cm"},
        "petal_width_cm",
    ),
    ("string number", {**_named(SETOSA), "sepal_width_cm": "wide"}, "sepal_width_cm"),
    ("empty instances", {"instances": []}, "at least 1 item"),
    ("too many instances", {"instances": [_named(SETOSA)] * 9}, "at most 8"),
    ("instance not an object", {"instances": [SETOSA]}, "instances"),
    ("extra key beside instances", {"instances": [_named(SETOSA)], "x": 1}, "x"),
    ("scalar body", 3, "error"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_PREDICT, ids=[c[0] for c in BAD_PREDICT])
def test_bad_predict_input_is_a_400_naming_the_field(
    client: TestClient, case: str, body: Any, field: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 400, response.text
    assert field in response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/feedback", {"request_id": 5, "label": "setosa"}),
        ("/feedback", {"label": "setosa"}),
        ("/feedback", [1, 2]),
        ("/stats", "not an object"),
    ],
)
def test_other_endpoints_reject_bad_bodies_with_4xx(
    client: TestClient, path: str, body: Any
) -> None:
    response = client.post(path, json=body)
    assert 400 <= response.status_code < 500, response.text


def test_health_and_metrics_families(client: TestClient) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    for _ in range(5):  # drift gauges appear once a window holds drift_config.min_window rows
        answered = client.post("/classify", json={"rows": [SETOSA, VIRGINICA] * 4})
    # Its own error and feedback: the error counter and the accuracy gauge appear with them.
    assert client.post("/classify", json={"rows": [[1.0]]}).status_code == 400
    request_id = answered.json()[0]["request_id"]
    labelled = client.post("/feedback", json={"request_id": request_id, "label": "setosa"})
    assert labelled.status_code == 200, labelled.text
    # The drift refresh runs in a background thread, off the batch path.
    deadline = time.monotonic() + 10
    while "mlops_feature_drift_score{" not in (text := client.get("/metrics").text):
        assert time.monotonic() < deadline, "drift gauges never appeared"
        time.sleep(0.05)
    for family in (
        "mlops_predictions_total",
        "mlops_prediction_confidence_bucket",
        "mlops_request_latency_seconds_bucket",
        "mlops_request_errors_total",
        "mlops_rolling_accuracy",
        "mlops_feature_drift_score",
        "mlops_feature_drift_detected",
        "mlops_drifted_features_share",
        "mlops_prediction_drift_score",
        "mlops_batch_size_bucket",
        "mlops_batch_seconds_bucket",
        "mlops_model_info",
        "mlops_challenger_weight",
        'mlops_requests_in_flight{endpoint="classify",service="tabular_classifier"}',
    ):
        assert family in text, family
    # The in-flight ceiling: MAX_CONCURRENCY (256), or more once a second measured more.
    limit = re.search(r'^mlops_in_flight_limit\{service="tabular_classifier"\} (\S+)$', text, re.M)
    assert limit is not None and float(limit.group(1)) >= 256
    assert 'class="setosa"' in text and f'model="{MODEL}"' in text
    assert 'variant="champion"' in text
    # BentoML's per-request middleware is off by default (REQUEST_METRICS).
    assert "bentoml_service_request_total" not in text


def test_bentoml_request_metrics_can_be_switched_on(iris_home: Path) -> None:
    service = tabular_service(model_name=MODEL, request_metrics=True)
    with asgi_client(service) as client:
        assert client.post("/classify", json={"rows": [SETOSA]}).status_code == 200
        text = client.get("/metrics").text
    assert "bentoml_service_request_total{" in text and 'endpoint="/classify"' in text
    assert "mlops_requests_in_flight{" in text


def test_drift_gauges_move_with_shifted_inputs(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    reference_like = np.column_stack(
        [
            rng.normal(5.8, 0.8, 200),
            rng.normal(3.05, 0.43, 200),
            rng.normal(3.7, 1.7, 200),
            rng.normal(1.2, 0.76, 200),
        ]
    )
    for chunk in np.array_split(reference_like, 25):
        client.post("/classify", json={"rows": chunk.round(2).tolist()})
    calm = _champion_stats(client)["drift"]

    shifted = reference_like.copy()
    shifted[:, 0] += 3.0
    for _ in range(3):
        for chunk in np.array_split(shifted, 25):
            client.post("/classify", json={"rows": chunk.round(2).tolist()})
    moved = _champion_stats(client)["drift"]

    calm_scores = {f["feature"]: f for f in calm["features"]}
    moved_scores = {f["feature"]: f for f in moved["features"]}
    assert moved_scores["sepal_length_cm"]["drifted"] is True
    assert moved_scores["sepal_length_cm"]["score"] > calm_scores["sepal_length_cm"]["score"]
    assert moved["drifted_share"] >= 0.25
    detected = metric_total(
        client, "mlops_feature_drift_detected", model=MODEL, feature="sepal_length_cm"
    )
    assert detected == 1.0


def test_stats_summarise_traffic(client: TestClient) -> None:
    stats = _champion_stats(client)
    assert stats["predictions"] == sum(stats["by_class"].values()) > 0
    assert 0.0 < stats["mean_confidence"] <= 1.0
    assert (
        stats["latency"]["count"] > 0 and stats["latency"]["p99_ms"] >= stats["latency"]["p50_ms"]
    )
    assert stats["errors"].get("invalid_input", 0) > 0


def _models(tracking_uri: str) -> dict[str, Any]:
    """What the ``models`` API answers for a worker started with this tracking store (the
    service reads its location once, when a worker starts; a second app in this process
    would collide with the module's in BentoML's metrics, so the view is asked directly)."""
    view = ServiceRegistryView(MODEL, tracking_uri, tracking_uri)
    return view.overview().model_dump(mode="json")


def test_models_lists_registry_versions_and_runs(
    client: TestClient, iris_home: Path, tmp_path: Path
) -> None:
    answered = client.post("/models")
    assert answered.status_code == 200 and answered.json()["model_name"] == MODEL
    overview = _models(f"sqlite:///{iris_home / 'mlflow.db'}")
    assert overview["error"] is None
    [version] = overview["versions"]
    assert version["version"] == "1" and "champion" in version["aliases"]
    assert version["metrics"]["accuracy"] > 0.9 and version["tags"]["gate.passed"] == "true"
    runs = overview["runs"]
    assert runs and all(run["status"] == "FINISHED" for run in runs)
    assert any(run["parent_run_id"] for run in runs), "candidate runs name their parent"

    # A missing tracking store is said, not created (MLflow would make an empty one).
    missing = tmp_path / "nowhere" / "mlflow.db"
    unavailable = _models(f"sqlite:///{missing}")
    assert unavailable["versions"] == [] and str(missing) in unavailable["error"]
    assert not missing.exists()


def test_web_ui_pages_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/ui/")
    assert page.status_code == 200 and "<title>bento-mlops</title>" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert (
        client.get("/ui/app.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )
    assert client.get("/ui/missing.js").status_code == 404


def test_the_web_ui_can_be_turned_off(client: TestClient) -> None:
    def mounted(ui: bool) -> list[str]:
        blueprint = build_tabular_service(ServingSettings(model_name=MODEL, ui=ui))
        service = blueprint.attach(bentoml.service(**blueprint.config)(blueprint.cls))
        return [path for _, path, _ in service.mount_apps]

    assert "/ui" in mounted(True) and "/ui" not in mounted(False)
