"""A model with categorical features: schema from the store, unknown categories accepted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.support.datasets import write_mixed_csv
from tests.support.serving import asgi_client, tabular_service, train_and_promote

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
    assert prediction["class_name"] in {"stays", "leaves"}
    assert prediction["unknown_categories"] == {"plan": "enterprise"}

    # classify rows follow the order `metadata` lists: numeric features first.
    rows = churn_client.post("/classify", json={"rows": [[61.5, 12, "pro", "south"]]})
    assert rows.status_code == 200, rows.text
    wrong_type = churn_client.post("/predict", json={**instance, "plan": 1.5})
    assert wrong_type.status_code == 400 and "plan" in wrong_type.text
