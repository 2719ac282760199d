"""The audit log as JSON lines in a file under ``MLOPS_HOME``: append-only, one event a line.

Each append opens, writes one line and closes the file (``O_APPEND``), so concurrent writers
(a CLI and a service) interleave whole lines and nothing buffered is lost on a crash.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class JsonlAuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Every event says when, whoever wrote it.
        stamped = {"at": time.time(), **event}
        line = json.dumps(stamped, default=str, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line]
