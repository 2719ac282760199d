"""Which prediction log a service writes to, from ``PREDICTION_LOG_URL``."""

from __future__ import annotations

from pathlib import Path

from domain.ports import PredictionLog

SQLITE_PREFIX = "sqlite:///"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_FILE = "predictions.db"


def open_prediction_log(url: str, home: Path) -> PredictionLog:
    """Empty: SQLite at ``home/predictions.db``; ``sqlite:///PATH`` (``sqlite:////abs``);
    ``redis://...`` for services on several hosts (the settings refuse anything else)."""
    if url.startswith(REDIS_SCHEMES):
        from infrastructure.monitoring.redis_prediction_log import RedisPredictionLog

        return RedisPredictionLog.from_url(url)
    from infrastructure.monitoring.sqlite_prediction_log import SqlitePredictionLog

    path = Path(url.removeprefix(SQLITE_PREFIX)) if url else home / DEFAULT_FILE
    return SqlitePredictionLog(path)
