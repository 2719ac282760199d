"""API keys and roles: who may call which endpoint.

A key is ``mk_<id>_<secret>``: the id finds the record, the secret is checked against its
stored SHA-256 digest in constant time. A slow password hash is not needed here: the
secret is 32 random bytes, not something a person chose, so the digest cannot be
brute-forced (the practice of GitHub's and Stripe's tokens). Keys are never stored or
logged in clear; only the id and name are shown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

PREFIX = "mk"


class Role(StrEnum):
    PREDICT = "predict"  # classify, predict, feedback
    ADMIN = "admin"  # reload, traffic, and everything predict may do

    def permits(self, needed: Role) -> bool:
        return self is Role.ADMIN or self is needed


class ApiKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    role: Role
    digest: str
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.digest, digest(secret))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(name: str, role: Role, now: float) -> tuple[ApiKey, str]:
    """A new key record and the token to hand out once."""
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    record = ApiKey(id=key_id, name=name, role=role, digest=digest(secret), created_at=now)
    return record, f"{PREFIX}_{key_id}_{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def authenticate(keys: dict[str, ApiKey], token: str) -> ApiKey | None:
    """The active key ``token`` belongs to, or None."""
    parts = split_token(token)
    if parts is None:
        return None
    record = keys.get(parts[0])
    if record is None or not record.active or not record.matches(parts[1]):
        return None
    return record
