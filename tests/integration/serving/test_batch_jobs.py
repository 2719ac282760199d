"""Batch jobs through a real service (``to_asgi``): a file uploaded, scored in the
background by the service's own prediction use case, fetched with its rejects; bad uploads
are 4xx naming the problem."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from starlette.testclient import TestClient

from tests.support.serving import asgi_client, tabular_service, train_and_promote

pytestmark = pytest.mark.slow

MODEL = "jobs-iris"
FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    train_and_promote(tmp_path_factory.mktemp("jobs-iris"), MODEL)
    service = tabular_service(
        model_name=MODEL, jobs_chunk_rows=40, jobs_max_bytes=64_000, jobs_max_active=3
    )
    with asgi_client(service) as test_client:
        yield test_client


def _csv(rows: int = 150) -> bytes:
    from infrastructure.ml.dataset_loader import PandasDatasetLoader

    frame = PandasDatasetLoader().load("iris").drop(columns=["target"]).head(rows).astype(str)
    frame.insert(0, "id", range(len(frame)))
    frame.loc[7, "petal_length_cm"] = "long"
    frame.loc[70, "sepal_width_cm"] = "1e400"
    return frame.to_csv(index=False).encode()


def _submit(client: TestClient, name: str, content: bytes, **form: str) -> Any:
    return client.post("/jobs/submit", files={"file": (name, content, "text/csv")}, data=form)


def _until_finished(client: TestClient, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        reply = client.post("/jobs/status", json={"job_id": job_id})
        assert reply.status_code == 200, reply.text
        job: dict[str, Any] = reply.json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_a_submitted_file_is_scored_with_its_rejects_and_matches_classify(
    client: TestClient,
) -> None:
    accepted = _submit(client, "flowers.csv", _csv())
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert job["status"] == "queued" and job["input_name"] == "flowers.csv"

    done = _until_finished(client, job["job_id"])
    assert done["status"] == "completed", done
    assert (done["scored"], done["rejected"], done["rows_done"]) == (148, 2, 150)
    assert done["model_version"] == "1" and done["attempts"] == 1

    result = client.post("/jobs/result", json={"job_id": job["job_id"]})
    assert result.status_code == 200
    assert 'filename="scored.csv"' in result.headers["content-disposition"]
    scored = pd.read_csv(io.BytesIO(result.content))
    assert len(scored) == 148 and 7 not in set(scored["row"])
    rejects = pd.read_csv(
        io.BytesIO(client.post("/jobs/rejects", json={"job_id": job["job_id"]}).content)
    )
    assert rejects["row"].tolist() == [7, 70]
    assert rejects["error"].tolist()[0].startswith("petal_length_cm:")

    # The same rows through `classify` get the same answers.
    head = scored.head(20)
    answers = client.post("/classify", json={"rows": head[FEATURES].values.tolist()}).json()
    assert head["predicted_label"].tolist() == [a["label"] for a in answers]
    assert head["probability"].round(9).tolist() == [round(a["probability"], 9) for a in answers]


def test_bad_uploads_are_refused_naming_the_problem(client: TestClient) -> None:
    missing = pd.DataFrame({"sepal_length_cm": [5.1]}).to_csv(index=False).encode()
    reply = _submit(client, "few.csv", missing)
    assert reply.status_code == 400 and "no column 'sepal_width_cm'" in reply.text
    reply = _submit(client, "flowers.xlsx", _csv())
    assert reply.status_code == 400 and ".csv, .tsv, .jsonl or .parquet" in reply.text
    too_big = _submit(client, "big.csv", _csv() * 25)
    assert too_big.status_code == 413 and "JOBS_MAX_BYTES" in too_big.text
    as_json = client.post("/jobs/submit", json={"file": "x"})
    assert as_json.status_code == 415 and "multipart/form-data" in as_json.text

    unknown = client.post("/jobs/status", json={"job_id": "0" * 32})
    assert unknown.status_code == 404 and "job_id" in unknown.text
    assert client.post("/jobs/status", json={"job_id": "nope"}).status_code == 400


def test_a_job_that_fails_says_why_and_its_files_are_a_409(client: TestClient) -> None:
    first = json.dumps(dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True)))
    broken = f"{first}\n{{not json\n".encode()
    reply = client.post(
        "/jobs/submit", files={"file": ("rows.jsonl", broken, "application/x-ndjson")}
    )
    assert reply.status_code == 202, reply.text
    done = _until_finished(client, reply.json()["job_id"])
    assert done["status"] == "failed" and done["error"], done
    result = client.post("/jobs/result", json={"job_id": done["job_id"]})
    assert result.status_code == 409 and "failed" in result.text
