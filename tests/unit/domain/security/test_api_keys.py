"""API keys: tokens carry an id and a secret, only digests are kept, roles nest."""

from __future__ import annotations

from domain.security.api_keys import Role, authenticate, digest, new_key, split_token


def test_a_new_key_authenticates_and_its_secret_is_not_stored() -> None:
    record, token = new_key("ci", Role.ADMIN, now=1.0)
    key_id, secret = split_token(token) or ("", "")
    assert key_id == record.id and secret not in record.model_dump_json()
    assert record.digest == digest(secret)
    assert authenticate({record.id: record}, token) == record


def test_wrong_malformed_and_revoked_tokens_are_refused() -> None:
    record, token = new_key("ci", Role.PREDICT, now=1.0)
    keys = {record.id: record}
    assert authenticate(keys, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert authenticate(keys, "not-a-key") is None
    assert authenticate(keys, f"mk_{record.id}_") is None
    revoked = record.model_copy(update={"revoked_at": 2.0})
    assert authenticate({record.id: revoked}, token) is None


def test_admin_may_do_what_predict_may_not_the_reverse() -> None:
    assert Role.ADMIN.permits(Role.PREDICT) and Role.ADMIN.permits(Role.ADMIN)
    assert Role.PREDICT.permits(Role.PREDICT) and not Role.PREDICT.permits(Role.ADMIN)
