"""Authentication and the audit trail on a real service (in-process): admin endpoints need
an admin key (401 without, 403 with a predict key), prediction endpoints need a key only
when REQUIRE_API_KEY is on; both answers are JSON the OpenAPI document declares; a revoked
key stops working without a restart; state changes are audited with who did them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.security.api_keys import Role
from infrastructure.audit.jsonl_audit_log import JsonlAuditLog
from infrastructure.cli import app
from infrastructure.config.settings import MlopsSettings
from infrastructure.security.json_key_store import RECHECK_S, JsonKeyStore
from tests.support.serving import asgi_client, tabular_service, train_and_promote

pytestmark = pytest.mark.slow

MODEL = "auth-iris"
ROW = {"rows": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> str:
    train_and_promote(tmp_path_factory.mktemp("auth"), MODEL)
    return MODEL


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_needs_an_admin_key_and_predictions_stay_open(trained: str, tmp_path: Path) -> None:
    keys = JsonKeyStore(tmp_path / "keys.json")
    _, admin = keys.create("ops", Role.ADMIN)
    predict_record, predict = keys.create("app", Role.PREDICT)
    service = tabular_service(model_name=trained, api_keys_file=str(tmp_path / "keys.json"))
    with asgi_client(service, admin=False) as client:
        assert client.post("/classify", json=ROW).status_code == 200, "open by default"
        for path in ("/admin/reload", "/admin/traffic"):
            body = {"challenger_weight": 0} if path.endswith("traffic") else None
            anonymous = client.post(path, json=body)
            assert anonymous.status_code == 401, anonymous.text
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            assert anonymous.json()["error"].startswith("authorization: no API key was sent")
            wrong = client.post(path, json=body, headers=_bearer(predict))
            assert wrong.status_code == 403 and "role predict" in wrong.json()["error"]
            forged = client.post(path, json=body, headers=_bearer(predict + "x"))
            assert forged.status_code == 401 and "not valid" in forged.json()["error"]
        reply = client.post("/admin/reload", headers={"X-API-Key": admin})
        assert reply.status_code == 200, reply.text
        assert "mk_" not in json.dumps(reply.json())

        spec = client.get("/docs.json").json()
        reload_responses = spec["paths"]["/admin/reload"]["post"]["responses"]
        assert {"401", "403"} <= set(reload_responses)
        assert spec["paths"]["/admin/reload"]["post"]["security"]
        assert "401" not in spec["paths"]["/classify"]["post"]["responses"]

        keys.revoke(predict_record.id)
        time.sleep(RECHECK_S + 0.1)
        assert client.post("/admin/reload", headers=_bearer(predict)).status_code == 401, (
            "revoked: no longer a key at all"
        )


def test_required_keys_cover_predictions_too(trained: str, tmp_path: Path) -> None:
    keys = JsonKeyStore(tmp_path / "keys.json")
    _, predict = keys.create("app", Role.PREDICT)
    service = tabular_service(
        model_name=trained, api_keys_file=str(tmp_path / "keys.json"), require_api_key=True
    )
    with asgi_client(service, admin=False) as client:
        assert client.post("/classify", json=ROW).status_code == 401
        assert client.post("/stats").status_code == 401
        answer = client.post("/classify", json=ROW, headers=_bearer(predict))
        assert answer.status_code == 200
        feedback = {"request_id": answer.json()[0]["request_id"], "label": "setosa"}
        assert client.post("/feedback", json=feedback, headers=_bearer(predict)).status_code == 200
        spec = client.get("/docs.json").json()
        assert {"401", "403"} <= set(spec["paths"]["/classify"]["post"]["responses"])


def test_admin_changes_and_cli_changes_are_audited(trained: str, tmp_path: Path) -> None:
    audit = JsonlAuditLog(MlopsSettings().home / "audit.jsonl")
    before = len(audit.read())
    service = tabular_service(model_name=trained)
    with asgi_client(service) as client:
        assert client.post("/admin/traffic", json={"challenger_weight": 10}).status_code == 200
        assert client.post("/admin/reload").status_code == 200
    events = audit.read()[before:]
    traffic = next(e for e in events if e["action"] == "traffic")
    assert (traffic["before"], traffic["after"], traffic["outcome"]) == (0.0, 10.0, "set")
    assert traffic["actor"].startswith("api key tests (") and traffic["model"] == MODEL
    assert any(e["action"] == "reload" for e in events) and all("at" in e for e in events)

    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "robot", "--role", "admin",
                                  "--file", str(tmp_path / "k.json")])  # fmt: skip
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("mk_")
    key_id = token.split("_")[1]
    listed = runner.invoke(app, ["keys", "list", "--file", str(tmp_path / "k.json")])
    assert key_id in listed.output and token not in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", key_id, "--file", str(tmp_path / "k.json")])
    assert revoked.exit_code == 0, revoked.output
    actions = [e["action"] for e in audit.read()[before:]]
    assert "key.create" in actions and "key.revoke" in actions
    shown = runner.invoke(app, ["audit", "--model", MODEL])
    assert shown.exit_code == 0 and "traffic" in shown.output
    assert token not in (MlopsSettings().home / "audit.jsonl").read_text()


def test_a_key_over_its_rate_gets_429_and_other_clients_do_not(
    trained: str, tmp_path: Path
) -> None:
    keys = JsonKeyStore(tmp_path / "keys.json")
    _, first = keys.create("batch-job", Role.PREDICT)
    _, second = keys.create("web-app", Role.PREDICT)
    # A rate that refills slower than the test runs: the burst is all a client gets.
    service = tabular_service(
        model_name=trained,
        api_keys_file=str(tmp_path / "keys.json"),
        rate_limit_per_key=0.05,
        rate_limit_burst=3,
    )
    with asgi_client(service, admin=False) as client:
        replies = [client.post("/classify", json=ROW, headers=_bearer(first)) for _ in range(4)]
        assert [r.status_code for r in replies] == [200, 200, 200, 429]
        refused = replies[-1]
        assert refused.json()["error"].startswith("rate limit: key 'batch-job'")
        assert "MLOPS_SERVE_RATE_LIMIT_PER_KEY" in refused.json()["error"]
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        assert client.post("/classify", json=ROW, headers=_bearer(second)).status_code == 200
        # Without a key the client's address is the client; the admin APIs are not limited.
        anonymous = [client.post("/classify", json=ROW).status_code for _ in range(4)]
        assert anonymous == [200, 200, 200, 429]
        for _ in range(4):
            assert client.post("/stats").status_code == 200
        spec = client.get("/docs.json").json()
        assert "429" in spec["paths"]["/classify"]["post"]["responses"]
