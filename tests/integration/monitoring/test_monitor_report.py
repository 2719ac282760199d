"""`mlops monitor report` and `mlops monitor export` over what a real tabular service wrote
to its prediction log: a load whose petal length shifted is flagged on that feature only and
exits 1, the files are written and logged to the version's MLflow run; the export is a
dataset the training config reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_iris
from typer.testing import CliRunner

from infrastructure.cli import app
from infrastructure.config.job_config import load_tabular_job
from tests.support.serving import (
    asgi_client,
    tabular_service,
    train_and_promote,
    write_iris_config,
)

pytestmark = pytest.mark.slow

MODEL = "monitor-iris"
SHIFTED = "petal length (cm)"
FEATURE = "petal_length_cm"  # as the training schema names it


def _serve_traffic(home: Path, shift: float) -> None:
    iris = load_iris(as_frame=True)
    frame = iris.frame.drop(columns="target")
    names = list(iris.target_names)
    shifted = frame.copy()
    shifted[SHIFTED] += shift
    service = tabular_service(
        model_name=MODEL, prediction_log_url=f"sqlite:///{home / 'predictions.db'}"
    )
    with asgi_client(service) as client:
        for part in (frame, shifted):
            rows = part.values.tolist()
            for start in range(0, len(rows), 10):
                answers = client.post("/classify", json={"rows": rows[start : start + 10]}).json()
                for offset, answer in enumerate(answers[:5]):
                    truth = names[int(iris.target.iloc[start + offset])]
                    reply = client.post(
                        "/feedback", json={"request_id": answer["request_id"], "label": truth}
                    )
                    assert reply.status_code == 200, reply.text


def _cli(home: Path, *args: str) -> tuple[int, str]:
    env = {"MLOPS_HOME": str(home), "MLOPS_BENTOML_HOME": os.environ["BENTOML_HOME"]}
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_a_shifted_feature_is_flagged_reported_logged_and_exported(tmp_path: Path) -> None:
    home = tmp_path / "state"
    container = train_and_promote(home, MODEL)
    _serve_traffic(home, shift=2.5)
    out = tmp_path / "report"

    code, output = _cli(home, "monitor", "report", MODEL, "--since", "1h", "-o", str(out))

    assert code == 1, output
    assert "drifted features" in output and FEATURE in output
    report = json.loads((out / "report.json").read_text())
    (champion,) = report["groups"]
    assert (champion["variant"], champion["version"], champion["predictions"]) == (
        "champion",
        "1",
        300,
    )
    drifted = {d["feature"] for d in champion["drift"]["features"] if d["drifted"]}
    assert drifted == {FEATURE}, drifted
    assert champion["labelled"] == 150
    assert {p.name for p in out.iterdir()} >= {
        "report.html",
        "report.json",
        "predictions.png",
        "drift_champion_v1.png",
        "accuracy.png",
    }
    assert FEATURE in (out / "report.html").read_text()
    run = container.registry.get_version(MODEL, "1").run_id
    assert run is not None
    logged = container.registry._client.list_artifacts(run, "monitoring")
    assert logged, "the report is logged to the version's run"
    assert container.registry.get_version(MODEL, "1").tags["monitor.flags"] == "1"

    code, output = _cli(home, "monitor", "report", MODEL, "--since", "1h", "-o", str(out),
                        "--max-drifted-share", "1.0", "--no-mlflow")  # fmt: skip
    assert code == 0, output

    dataset = tmp_path / "labelled.csv"
    code, output = _cli(home, "monitor", "export", MODEL, "-o", str(dataset), "--since", "1h")
    assert code == 0 and "150 rows" in output, output
    exported = pd.read_csv(dataset)
    schema = [  # the training schema names iris columns this way
        name.replace(" (cm)", "_cm").replace(" ", "_") for name in load_iris().feature_names
    ]
    assert list(exported.columns) == [*schema, "target"]
    assert set(exported["target"]) <= {"setosa", "versicolor", "virginica"}
    # The loop closes: a training config reads the export as it reads any table.
    config = write_iris_config(
        home,
        f"{MODEL}-retrained",
        dataset={"source": str(dataset), "target": "target"},
        gate={"metric": "accuracy", "threshold": 0.5},
    )
    retrained = container.run_tabular_training(load_tabular_job(config))
    assert retrained.registered.version == "1"

    code, output = _cli(home, "monitor", "report", MODEL, "--since", "soon")
    assert code == 2 and "--since" in output, output
