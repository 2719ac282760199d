"""API keys in a JSON file (default ``$MLOPS_HOME/api_keys.json``, mode 0600): digests, ids,
names, roles and dates, never a key in clear.

Services re-read the file when it changes, so a revoked key stops working within a second
without a restart. Writes go to a temporary file moved into place: a service never reads
half a file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from domain.security.api_keys import ApiKey, Role, new_key
from shared.errors import ConfigError

RECHECK_S = 1.0


class JsonKeyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cached: dict[str, ApiKey] = {}
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0

    def keys(self) -> dict[str, ApiKey]:
        """Every key by id (re-read at most once a second, when the file changed)."""
        now = time.monotonic()
        with self._lock:
            if now - self._checked < RECHECK_S and self._stamp is not None:
                return self._cached
            self._checked = now
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._cached, self._stamp = {}, (0.0, 0)
                return self._cached
            stamp = (stat.st_mtime, stat.st_size)
            if stamp != self._stamp:
                self._cached = self._read()
                self._stamp = stamp
            return self._cached

    def _read(self) -> dict[str, ApiKey]:
        try:
            raw = json.loads(self.path.read_text())
            return {k["id"]: ApiKey.model_validate(k) for k in raw["keys"]}
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(
                f"{self.path}: not a key file written by `mlops keys` ({error})"
            ) from None

    def _write(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        payload = {"keys": [k.model_dump(mode="json") for k in keys.values()]}
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            json.dump(payload, stream, indent=2)
        staged.replace(self.path)
        self._stamp = None

    def create(self, name: str, role: Role) -> tuple[ApiKey, str]:
        keys = dict(self._read()) if self.path.exists() else {}
        record, token = new_key(name, role, time.time())
        keys[record.id] = record
        self._write(keys)
        return record, token

    def revoke(self, key_id: str) -> ApiKey:
        keys = dict(self._read()) if self.path.exists() else {}
        record = keys.get(key_id)
        if record is None:
            raise ConfigError(f"no API key with id {key_id!r} (see `mlops keys list`)")
        if record.active:
            record = record.model_copy(update={"revoked_at": time.time()})
            keys[key_id] = record
            self._write(keys)
        return record
