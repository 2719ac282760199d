"""The prediction log in Redis, for services whose workers run on several hosts.

Layout (all keys under ``mlops:``): one hash per request id (field: variant, value: the
record as JSON) that expires after the retention; the label of a request id, set once with
``SET NX`` so two workers can never both label it; sorted sets by time per (model, variant,
version) for the drift and latency windows, per key by label time for rolling accuracy, and
per model for reports; a hash of counters per key (``HINCRBYFLOAT``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import redis

from domain.monitoring.prediction_log import CORRECT, LABELLED, LogKey, PredictionRecord
from shared.errors import UnknownPredictionError

PREFIX = "mlops:"
DEFAULT_RETENTION_S = 30 * 86_400


def _key_name(key: LogKey) -> str:
    return json.dumps([key.model, key.variant, key.version])


def _redis_key(kind: str, name: str) -> str:
    """``rec``/``label`` by request id; ``recent``/``labelled``/``counts`` by log key;
    ``time`` by model."""
    return f"{PREFIX}{kind}:{name}"


class RedisPredictionLog:
    def __init__(self, client: Any, retention_s: float = DEFAULT_RETENTION_S) -> None:
        self._redis = client
        self._retention_s = int(retention_s)

    @classmethod
    def from_url(cls, url: str, retention_s: float = DEFAULT_RETENTION_S) -> RedisPredictionLog:
        return cls(redis.Redis.from_url(url, decode_responses=True), retention_s)

    # -- writes ------------------------------------------------------------------------
    def append(self, records: Sequence[PredictionRecord]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for record in records:
            fields = asdict(record)
            record_key = _redis_key("rec", record.request_id)
            pipe.hsetnx(record_key, record.variant, json.dumps(fields))
            pipe.expire(record_key, self._retention_s)
            pipe.zadd(_redis_key("recent", _key_name(record.key)), {record.request_id: record.at})
            pipe.zadd(
                _redis_key("time", record.model),
                {f"{record.request_id}|{record.variant}": record.at},
            )
            pipe.sadd(f"{PREFIX}keys", _key_name(record.key))
            pipe.sadd(f"{PREFIX}models", record.model)
        pipe.execute()

    def add_counts(self, counts: Mapping[LogKey, Mapping[str, float]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, named in counts.items():
            for name, value in named.items():
                pipe.hincrbyfloat(_redis_key("counts", _key_name(key)), name, float(value))
        pipe.execute()

    def label(self, request_id: str, actual: str, at: float) -> list[PredictionRecord]:
        records = self._unlabelled(request_id)
        if not records:
            raise UnknownPredictionError(
                f"request_id: no prediction {request_id!r} awaits feedback "
                "(unknown, already labelled, or pruned)"
            )
        label = json.dumps({"actual": actual, "at": at})
        if not self._redis.set(
            _redis_key("label", request_id), label, nx=True, ex=self._retention_s
        ):
            raise UnknownPredictionError(
                f"request_id: prediction {request_id!r} is already labelled"
            )
        pipe = self._redis.pipeline(transaction=True)
        for record in records:
            pipe.zadd(_redis_key("labelled", _key_name(record.key)), {request_id: at})
            pipe.hincrbyfloat(_redis_key("counts", _key_name(record.key)), LABELLED, 1.0)
            pipe.hincrbyfloat(
                _redis_key("counts", _key_name(record.key)), CORRECT, float(record.label == actual)
            )
        pipe.execute()
        return [replace(r, actual=actual, labelled_at=at) for r in records]

    def prune(self, before: float) -> int:
        removed = 0
        for model in self._redis.smembers(f"{PREFIX}models"):
            removed += int(
                self._redis.zremrangebyscore(_redis_key("time", model), "-inf", f"({before}")
            )
        for name in self._redis.smembers(f"{PREFIX}keys"):
            self._redis.zremrangebyscore(_redis_key("recent", name), "-inf", f"({before}")
            self._redis.zremrangebyscore(_redis_key("labelled", name), "-inf", f"({before}")
        return removed

    # -- reads -------------------------------------------------------------------------
    def _unlabelled(self, request_id: str) -> list[PredictionRecord]:
        if self._redis.exists(_redis_key("label", request_id)):
            return []
        return self.records(request_id)

    def _decode(self, raw: str, label: str | None) -> PredictionRecord:
        record = PredictionRecord(**json.loads(raw))
        if label is None:
            return record
        given = json.loads(label)
        return replace(record, actual=given["actual"], labelled_at=given["at"])

    def counts(self, key: LogKey) -> dict[str, float]:
        return {
            name: float(value)
            for name, value in self._redis.hgetall(_redis_key("counts", _key_name(key))).items()
        }

    def records(self, request_id: str) -> list[PredictionRecord]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(_redis_key("rec", request_id))
        pipe.get(_redis_key("label", request_id))
        stored, label = pipe.execute()
        return [self._decode(raw, label) for raw in stored.values()]

    def _by_ids(self, pairs: Sequence[tuple[str, str]]) -> list[PredictionRecord]:
        """Records by (request id, variant), in the order given; expired ones skipped."""
        pipe = self._redis.pipeline(transaction=False)
        for request_id, variant in pairs:
            pipe.hget(_redis_key("rec", request_id), variant)
            pipe.get(_redis_key("label", request_id))
        answers = pipe.execute()
        return [
            self._decode(raw, label)
            for raw, label in zip(answers[::2], answers[1::2], strict=True)
            if raw is not None
        ]

    def recent(self, key: LogKey, limit: int) -> list[PredictionRecord]:
        ids = self._redis.zrevrange(_redis_key("recent", _key_name(key)), 0, limit - 1)
        return self._by_ids([(request_id, key.variant) for request_id in ids])

    def recent_labelled(self, key: LogKey, limit: int) -> list[PredictionRecord]:
        ids = self._redis.zrevrange(_redis_key("labelled", _key_name(key)), 0, limit - 1)
        return self._by_ids([(request_id, key.variant) for request_id in ids])

    def between(self, model: str, since: float, until: float) -> list[PredictionRecord]:
        members = self._redis.zrangebyscore(_redis_key("time", model), since, f"({until}")
        pairs = [tuple(member.rsplit("|", 1)) for member in members]
        return self._by_ids([(request_id, variant) for request_id, variant in pairs])
