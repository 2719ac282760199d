"""Model variants a service holds at once, and the sticky split of live traffic between them.

``champion`` answers by default; ``challenger`` answers a share of live traffic (its weight,
0-100 percent); ``shadow`` scores a copy of live traffic off the request path and never
answers. Each follows a registry alias.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

VariantName = Literal["champion", "challenger", "shadow"]
CHAMPION: VariantName = "champion"
CHALLENGER: VariantName = "challenger"
SHADOW: VariantName = "shadow"
# Buckets of the hash space: weights resolve to 0.01 percent.
BUCKETS = 10_000


class VariantMode(StrEnum):
    LIVE = "live"
    SHADOW = "shadow"


class Variant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: VariantName
    alias: str = Field(min_length=1)
    mode: VariantMode = VariantMode.LIVE
    # Share of live traffic, percent; the champion takes what the challenger leaves.
    weight: float = Field(default=0.0, ge=0.0, le=100.0)

    @model_validator(mode="after")
    def _mode_fits_the_name(self) -> Variant:
        expected = VariantMode.SHADOW if self.name == SHADOW else VariantMode.LIVE
        if self.mode is not expected:
            raise ValueError(f"variant {self.name} must be mode {expected.value}")
        return self


def bucket_of(key: str) -> int:
    """Where a routing key falls in [0, BUCKETS): the same key always lands in the same place.

    BLAKE2b rather than ``hash()``: Python salts ``hash`` per process, and every worker and
    replica must route a key alike.
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


class TrafficSplit:
    """Deterministic, sticky routing of live requests: champion or challenger.

    A key goes to the challenger when its bucket is below the challenger's weight, so raising
    the weight only moves keys from champion to challenger (a canary step never reshuffles
    users who already saw the challenger). Requests without a key get a random bucket.
    """

    def __init__(
        self,
        challenger_weight: float = 0.0,
        random_bucket: Callable[[], int] = lambda: random.randrange(BUCKETS),
    ) -> None:
        self._threshold = 0
        # A uniform bucket, as a random key would hash to: drawn directly because a uuid4
        # per request (os.urandom plus a hash) was 3% of the service's CPU under load.
        self._random_bucket = random_bucket
        self.set_weight(challenger_weight)

    @property
    def challenger_weight(self) -> float:
        return self._threshold * 100.0 / BUCKETS

    def set_weight(self, weight: float) -> None:
        if not 0.0 <= weight <= 100.0:
            raise ValueError(f"weight: {weight} is outside 0-100 (percent of live traffic)")
        self._threshold = round(weight * BUCKETS / 100.0)

    def route(self, key: str | None) -> VariantName:
        if not self._threshold:
            return CHAMPION
        bucket = bucket_of(key) if key else self._random_bucket()
        return CHALLENGER if bucket < self._threshold else CHAMPION

    def route_all(self, keys: Sequence[str | None]) -> list[VariantName]:
        return [self.route(key) for key in keys]
