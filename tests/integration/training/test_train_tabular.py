"""Real training into a temp MLflow SQLite store and the session's temp BentoML store."""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from application.registry.lifecycle import promote, rollback
from application.validation.validate_model import validate_model
from infrastructure.bootstrap import Container, bootstrap
from infrastructure.cli import app
from infrastructure.config.job_config import load_tabular_job
from infrastructure.config.settings import MlopsSettings
from infrastructure.store.bento_model_store import stored_contract
from shared.errors import ConfigError, DataError, GateFailedError
from tests.conftest import REPO_ROOT
from tests.support.datasets import write_mixed_csv

pytestmark = pytest.mark.slow

FAST_CANDIDATES = [
    {"estimator": "logistic_regression", "params": {"C": 1.0}},
    {"estimator": "random_forest", "params": {"n_estimators": 20, "max_depth": 4}},
]


@pytest.fixture
def container(tmp_path: Path) -> Container:
    return bootstrap(
        MlopsSettings(home=tmp_path / "state", bentoml_home=Path(os.environ["BENTOML_HOME"]))
    )


def _write_config(tmp_path: Path, name: str, **overrides: object) -> Path:
    config = yaml.safe_load((REPO_ROOT / "configs" / "iris.yaml").read_text())
    config["registered_model_name"] = name
    config["candidates"] = FAST_CANDIDATES
    config.update(overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train(container: Container, config: Path) -> object:
    return container.run_tabular_training(load_tabular_job(config))


def test_iris_trains_registers_challenger_and_stores_labelled_model(
    container: Container, tmp_path: Path
) -> None:
    outcome = _train(container, _write_config(tmp_path, "iris-it"))

    assert outcome.gate.passed and outcome.winner.report.accuracy >= 0.95  # type: ignore[attr-defined]
    client = MlflowClient(container.settings.tracking_uri)
    version = client.get_model_version_by_alias("iris-it", "challenger")
    assert str(version.version) == "1"
    # `mlops models` shows what the registry reads back: the winner's held-out metrics.
    listed = container.registry.list_versions("iris-it")[0].metrics
    assert listed["accuracy"] == pytest.approx(outcome.winner.report.accuracy)  # type: ignore[attr-defined]
    assert listed["macro_f1"] == pytest.approx(outcome.winner.report.macro_f1)  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="champion"):
        client.get_model_version_by_alias("iris-it", "champion")

    parent = client.get_run(outcome.run_id)  # type: ignore[attr-defined]
    children = [
        run
        for run in client.search_runs([parent.info.experiment_id])
        if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    ]
    assert sorted(run.info.run_name for run in children) == ["logistic_regression", "random_forest"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {
        "quality_report.json",
        "classification_report.json",
        "confusion_matrix.png",
        "reference_profile.json",
        "feature_schema.json",
        "evaluation",
    } <= artifacts
    assert parent.data.tags["dataset.sha256"] == outcome.fingerprint.sha256  # type: ignore[attr-defined]
    assert parent.inputs is not None
    assert {i.dataset.name for i in parent.inputs.dataset_inputs} == {"train", "test"}

    stored = bentoml.models.get(outcome.stored_tag)  # type: ignore[attr-defined]
    assert stored.info.labels["mlflow_run_id"] == outcome.run_id  # type: ignore[attr-defined]
    assert stored.info.labels["registered_version"] == "1"
    assert stored.info.labels["alias"] == "challenger"
    assert stored.info.labels["dataset_sha256"] == outcome.fingerprint.short  # type: ignore[attr-defined]
    contract = stored_contract(stored)
    assert contract.task == "tabular-classification"
    assert contract.classes == ("setosa", "versicolor", "virginica")
    assert contract.feature_schema is not None
    assert contract.feature_schema.names[:1] == ["sepal_length_cm"]
    assert set(contract.reference_profile.numeric) == set(contract.feature_schema.names)
    assert contract.metrics["accuracy"] >= 0.95
    assert contract.gate.threshold == 0.9 or contract.gate.metric == "accuracy"
    # The stored pipeline predicts straight from named features.
    model = bentoml.sklearn.load_model(stored)
    row = pd.DataFrame(
        [
            {
                "sepal_length_cm": 5.1,
                "sepal_width_cm": 3.5,
                "petal_length_cm": 1.4,
                "petal_width_cm": 0.2,
            }
        ]
    )
    assert model.predict(row).tolist() == ["setosa"]


def test_gate_lifecycle_promote_rollback_and_weak_model(
    container: Container, tmp_path: Path
) -> None:
    good = _write_config(tmp_path, "iris-life")
    _train(container, good)
    assert validate_model(container.registry, "iris-life", alias="challenger").gate.passed
    promote(container.registry, container.store, "iris-life")
    _train(container, good)
    promote(container.registry, container.store, "iris-life")
    assert container.registry.get_by_alias("iris-life", "champion").version == "2"  # type: ignore[union-attr]

    # A deliberately weak model: a 1-leaf forest on one feature cannot reach 0.95.
    weak = _write_config(
        tmp_path,
        "iris-life",
        candidates=[{"estimator": "random_forest", "params": {"n_estimators": 1, "max_depth": 1}}],
        dataset={
            "source": "iris",
            "target": "target",
            "numeric_features": ["sepal_width_cm"],
            "categorical_features": [],
        },
    )
    outcome = _train(container, weak)
    assert not outcome.gate.passed  # type: ignore[attr-defined]
    assert container.registry.get_by_alias("iris-life", "challenger").version == "3"  # type: ignore[union-attr]
    with pytest.raises(GateFailedError):
        promote(container.registry, container.store, "iris-life")
    assert container.registry.get_by_alias("iris-life", "champion").version == "2"  # type: ignore[union-attr]
    assert container.store.tag_for_alias("iris-life", "champion") == container.store.find_tag(
        "iris-life", "2"
    )

    assert rollback(container.registry, container.store, "iris-life") == ("2", "1")
    assert container.registry.get_by_alias("iris-life", "champion").version == "1"  # type: ignore[union-attr]
    assert container.store.tag_for_alias("iris-life", "champion") == container.store.find_tag(
        "iris-life", "1"
    )


def test_blocking_quality_failure_registers_nothing(container: Container, tmp_path: Path) -> None:
    csv = tmp_path / "holes.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=100), "label": ["x", "y"] * 50})
    frame.loc[:79, "a"] = np.nan
    frame.to_csv(csv, index=False)
    config = _write_config(tmp_path, "holes", dataset={"source": str(csv), "target": "label"})
    with pytest.raises(DataError, match=r"a: 80\.0% missing"):
        _train(container, config)
    assert container.registry.get_by_alias("holes", "challenger") is None
    client = MlflowClient(container.settings.tracking_uri)
    experiment = client.get_experiment_by_name("iris")
    assert experiment is not None
    failed = client.search_runs([experiment.experiment_id])
    assert [run.info.status for run in failed] == ["FAILED"]


def test_unseen_mixed_csv_trains_end_to_end_from_config_only(tmp_path: Path) -> None:
    write_mixed_csv(tmp_path / "customers.csv")
    config = tmp_path / "churn.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "experiment": "churn",
                "registered_model_name": "churn-classifier",
                "dataset": {"source": "customers.csv", "target": "churn"},
                "candidates": [
                    {"estimator": "hist_gradient_boosting", "params": {"max_iter": 50}},
                    {"estimator": "svc", "params": {"C": 2.0}},
                ],
                "gate": {"metric": "accuracy", "threshold": 0.8},
            }
        )
    )
    result = CliRunner().invoke(app, ["train", str(config)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "gate PASSED" in result.output
    assert "customer_name: left out of the features" in result.output
    assert "400 distinct of 400 rows" in result.output

    stored = bentoml.models.get(bentoml.models.list("churn-classifier")[0].tag)
    schema = stored_contract(stored).feature_schema
    assert schema is not None
    kinds = {f.name: f.kind.value for f in schema.features}
    assert kinds == {
        "income": "numeric",
        "plan": "categorical",
        "region": "categorical",
        "tenure_months": "numeric",
    }
    model = bentoml.sklearn.load_model(stored)
    unseen = pd.DataFrame(
        [{"income": np.nan, "plan": "enterprise", "region": None, "tenure_months": 3.0}]
    )
    assert model.predict(unseen)[0] in {"stays", "leaves"}


def test_cli_validate_exits_by_gate_and_promote_refuses_weak(tmp_path: Path) -> None:
    runner = CliRunner()
    config = _write_config(tmp_path, "iris-cli")
    assert runner.invoke(app, ["train", str(config)]).exit_code == 0
    passed = runner.invoke(app, ["validate", "iris-cli", "--alias", "challenger"])
    assert passed.exit_code == 0 and "gate PASSED" in passed.output
    failed = runner.invoke(app, ["validate", "iris-cli", "--threshold", "0.999"])
    assert failed.exit_code == 1 and "gate FAILED" in failed.output
    refused = runner.invoke(app, ["promote", "iris-cli", "--threshold", "0.999"])
    assert refused.exit_code == 1
    assert runner.invoke(app, ["models", "iris-cli"]).exit_code == 0
    assert runner.invoke(app, ["promote", "iris-cli"]).exit_code == 0
    listing = runner.invoke(app, ["models", "iris-cli"], terminal_width=250)
    assert "champion" in listing.output and "iris-cli:" in listing.output
    missing = runner.invoke(app, ["rollback", "iris-cli"])
    assert missing.exit_code == 2 and "no previous champion" in missing.output


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gate": {"metric": "accuracy", "threshold": 1.5}}, "gate.threshold"),
        ({"candidates": [{"estimator": "xgboost"}]}, "candidates.0.estimator"),
        ({"colour": "red"}, "colour"),
        ({"selection_metric": "auc"}, "selection_metric"),
        (
            {"candidates": [{"estimator": "random_forest", "params": {"n_trees": 5}}]},
            "candidates.0.params",
        ),
        (
            {"candidates": [{"estimator": "random_forest", "params": {"n_estimators": "many"}}]},
            "candidates.0.params",
        ),
        (
            {
                "dataset": {
                    "source": "iris",
                    "numeric_features": ["sepal_length_cm"],
                    "categorical_features": ["sepal_length_cm"],
                }
            },
            "dataset.numeric_features and dataset.categorical_features",
        ),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, change: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_tabular_job(_write_config(tmp_path, "bad", **change))


def test_alias_points_a_non_champion_alias_and_refuses_champion(tmp_path: Path) -> None:
    runner = CliRunner()
    home = tmp_path / "alias-home"
    env = {"MLOPS_HOME": str(home), "MLOPS_TRACKING_URI": "", "MLOPS_REGISTRY_URI": ""}
    config = _write_config(tmp_path, "iris-alias")
    assert runner.invoke(app, ["train", str(config)], env=env).exit_code == 0

    set_shadow = runner.invoke(app, ["alias", "iris-alias", "shadow", "1"], env=env)
    assert set_shadow.exit_code == 0, set_shadow.output
    from infrastructure.store.bento_model_store import BentoModelStore

    assert BentoModelStore().tag_for_alias("iris-alias", "shadow") is not None
    refused = runner.invoke(app, ["alias", "iris-alias", "champion", "1"], env=env)
    assert refused.exit_code == 2 and "promote" in refused.output
    audit = (home / "audit.jsonl").read_text()
    assert '"action": "alias.shadow"' in audit
