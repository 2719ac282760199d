"""`mlops score` on a real stored model: every row is scored or rejected with its reason,
the answers are the service's row for row, and an interrupted run resumes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from application.inference.batch_scoring import ScoringProgress
from infrastructure.batch.file_scoring import ScoringRequest, score_file
from infrastructure.cli import app
from tests.support.datasets import write_mixed_csv
from tests.support.serving import asgi_client, tabular_service, train_and_promote

pytestmark = pytest.mark.slow

MODEL = "score-churn"
FEATURES = ["income", "plan", "region", "tenure_months"]
runner = CliRunner()


@pytest.fixture(scope="module")
def scoring_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The training table without its target, 400 good rows and 5 bad ones among them."""
    home = tmp_path_factory.mktemp("score-churn")
    write_mixed_csv(home / "customers.csv")
    train_and_promote(
        home,
        MODEL,
        dataset={"source": str(home / "customers.csv"), "target": "churn"},
        gate={"metric": "accuracy", "threshold": 0.7},
    )
    frame = pd.read_csv(home / "customers.csv", dtype=str, keep_default_na=False)
    frame = frame.drop(columns=["churn"])
    frame.loc[10, "income"] = "about fifty"
    frame.loc[50, "income"] = "inf"
    frame.loc[90, "tenure_months"] = "1e308"
    frame.loc[130, "income"] = "abc"
    frame.loc[130, "tenure_months"] = "x"
    frame.loc[170, "plan"] = "enterprise"  # unknown category: scored, and named in the answer
    frame.loc[210, "income"] = ""  # missing: imputed as in the service
    source = home / "customers_to_score.csv"
    frame.to_csv(source, index=False)
    return source


@pytest.fixture(scope="module")
def service() -> Iterator[TestClient]:
    with asgi_client(tabular_service(model_name=MODEL)) as client:
        yield client


def _score(*args: str) -> Any:
    return runner.invoke(app, ["score", MODEL, *args])


def test_every_row_is_scored_or_rejected_and_matches_the_service(
    scoring_input: Path, service: TestClient, tmp_path: Path
) -> None:
    output = tmp_path / "scored.csv"
    result = _score(str(scoring_input), "-o", str(output), "--chunk-rows", "64")
    assert result.exit_code == 0, result.output
    assert "400 rows" in result.output and "4 rejected" in result.output

    scored = pd.read_csv(output, dtype={"income": str, "tenure_months": str})
    rejects = pd.read_csv(tmp_path / "scored.rejects.csv")
    assert len(scored) + len(rejects) == 400
    assert sorted(rejects["row"]) == [10, 50, 90, 130]
    reasons = dict(zip(rejects["row"], rejects["error"], strict=True))
    assert reasons[10].startswith("income:") and "number" in reasons[10]
    assert reasons[50].startswith("income:") and "finite" in reasons[50]
    assert reasons[90].startswith("tenure_months:")
    assert "income:" in reasons[130] and "tenure_months:" in reasons[130]
    assert scored["row"].tolist() == [i for i in range(400) if i not in reasons]
    assert set(scored["customer_id"]) | set(rejects["customer_id"]) == set(range(1, 401))
    assert json.loads(str(scored.set_index("row").loc[170, "unknown_categories"])) == {
        "plan": "enterprise"
    }

    # The service's answers for the same rows (its `predict` takes named features).
    source = pd.read_csv(scoring_input, keep_default_na=False, na_values=[""])
    rows = source.loc[scored["row"], FEATURES]
    for column in ("income", "tenure_months"):  # text in this file where a bad row is
        rows[column] = pd.to_numeric(rows[column])
    instances = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in rows.to_dict("records")
    ]
    answers = []
    for start in range(0, len(instances), 50):
        reply = service.post("/predict", json={"instances": instances[start : start + 50]})
        assert reply.status_code == 200, reply.text
        answers += reply.json()["predictions"]
    assert scored["predicted_label"].tolist() == [a["label"] for a in answers]
    for cls in ("stays", "leaves"):
        np.testing.assert_allclose(
            scored[f"probability_{cls}"], [a["probabilities"][cls] for a in answers], rtol=1e-9
        )
    assert {json.dumps(a["unknown_categories"], sort_keys=True) for a in answers} == set(
        scored["unknown_categories"]
    )
    assert set(scored["variant"]) == {"champion"} and set(scored["model_version"]) == {1}


def test_an_interrupted_run_resumes_and_writes_the_same_file(
    scoring_input: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.jsonl"
    assert _score(str(scoring_input), "-o", str(whole), "--chunk-rows", "100").exit_code == 0

    output = tmp_path / "resumed.jsonl"
    request = ScoringRequest(MODEL, scoring_input, output, chunk_rows=100)

    def stop_after_two(progress: ScoringProgress) -> None:
        if progress.chunks == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_file(request, on_progress=stop_after_two)
    assert not output.exists() and (tmp_path / "resumed.jsonl.parts").is_dir()

    # A different chunk size would mix two runs' parts: refused, with the way out.
    other = _score(str(scoring_input), "-o", str(output), "--chunk-rows", "50")
    assert other.exit_code == 2 and "--restart" in other.output and "chunk_rows" in other.output

    resumed = _score(str(scoring_input), "-o", str(output), "--chunk-rows", "100")
    assert resumed.exit_code == 0, resumed.output
    assert "200 done by an earlier run" in resumed.output
    assert not (tmp_path / "resumed.jsonl.parts").exists()
    first = pd.read_json(whole, lines=True).drop(columns=["request_id"])
    again = pd.read_json(output, lines=True).drop(columns=["request_id"])
    pd.testing.assert_frame_equal(first, again)
    assert len(pd.read_json(tmp_path / "resumed.rejects.jsonl", lines=True)) == 4


def test_parquet_in_and_out_a_pinned_version_and_clear_usage_errors(
    scoring_input: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(scoring_input, keep_default_na=False, na_values=[""])
    good = frame.drop(index=[10, 50, 90, 130]).reset_index(drop=True)
    good["income"] = good["income"].astype(float)
    good["tenure_months"] = good["tenure_months"].astype(float)
    source = tmp_path / "good.parquet"
    good.to_parquet(source, index=False)
    output = tmp_path / "out.parquet"
    result = _score(str(source), "-o", str(output), "--version", "1")
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(output)
    assert len(scored) == len(good) and set(scored["variant"]) == {"pinned"}
    assert len(pd.read_parquet(tmp_path / "out.rejects.parquet")) == 0

    missing = tmp_path / "missing.csv"
    frame.drop(columns=["plan"]).to_csv(missing, index=False)
    refused = _score(str(missing), "-o", str(tmp_path / "x.csv"))
    assert refused.exit_code == 2 and "no column 'plan'" in refused.output
    assert _score(str(source), "-o", str(tmp_path / "x.xlsx")).exit_code == 2
    unknown = _score(str(source), "-o", str(tmp_path / "y.csv"), "--version", "99")
    assert unknown.exit_code == 2 and "version 99" in unknown.output
