"""A model with categorical features: schema from the store, unknown categories accepted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.support.datasets import write_mixed_csv
from tests.support.serving import asgi_client, metric_total, tabular_service, train_and_promote

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def churn_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("serve-churn")
    write_mixed_csv(home / "customers.csv")
    train_and_promote(
        home,
        "serve-churn",
        dataset={"source": str(home / "customers.csv"), "target": "churn"},
        gate={"metric": "accuracy", "threshold": 0.7},
    )
    with asgi_client(tabular_service(model_name="serve-churn")) as test_client:
        yield test_client


def test_categorical_model_schema_and_unknown_categories(churn_client: TestClient) -> None:
    instance = {"income": 61.5, "plan": "enterprise", "region": "north", "tenure_months": 12}
    response = churn_client.post("/predict", json=instance)
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert prediction["label"] in {"stays", "leaves"}
    assert prediction["unknown_categories"] == {"plan": "enterprise"}

    # classify rows follow the order `metadata` lists: numeric features first.
    rows = churn_client.post("/classify", json={"rows": [[61.5, 12, "pro", "south"]]})
    assert rows.status_code == 200, rows.text
    wrong_type = churn_client.post("/predict", json={**instance, "plan": 1.5})
    assert wrong_type.status_code == 400 and "plan" in wrong_type.text


def test_null_features_are_imputed_counted_and_non_finite_stays_rejected(
    churn_client: TestClient,
) -> None:
    gap = {"income": None, "plan": "pro", "region": None, "tenure_months": 12}
    single = churn_client.post("/predict", json=gap)
    assert single.status_code == 200, single.text
    assert single.json()["predictions"][0]["unknown_categories"] == {}
    rows = churn_client.post("/classify", json={"rows": [[None, 12, "pro", None]] * 3})
    assert rows.status_code == 200, rows.text
    # The same gaps through both endpoints reach the same imputed Pipeline input.
    assert rows.json()[0]["probabilities"] == single.json()["predictions"][0]["probabilities"]

    missing = {
        feature: metric_total(
            churn_client, "mlops_feature_missing_values_total", model="serve-churn", feature=feature
        )
        for feature in ("income", "region", "plan")
    }
    assert missing == {"income": 4.0, "region": 4.0, "plan": 0.0}

    omitted = {k: v for k, v in gap.items() if k != "income"}
    response = churn_client.post("/predict", json=omitted)
    assert response.status_code == 400 and "income" in response.text, "omitted is not null"
    for body in (b'{"rows": [[NaN, 12, "pro", null]]}', b'{"rows": [[1e999, 12, "pro", null]]}'):
        bad = churn_client.post(
            "/classify", content=body, headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400 and "finite number" in bad.text


def test_metadata_stays_small_and_the_identifiers_are_not_features(
    churn_client: TestClient,
) -> None:
    meta = churn_client.post("/metadata").json()
    features = {f["name"]: f for f in meta["features"]}
    assert set(features) == {"income", "tenure_months", "plan", "region"}
    assert features["plan"]["categories"] == ["basic", "plus", "pro"]
    assert features["plan"]["category_count"] == 3 and features["plan"]["nullable"] is True
