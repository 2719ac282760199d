"""A model loaded for serving, whatever its kind: the pool, router and monitors see only this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from domain.models.contract import ServingContract

DriftValues = tuple[Mapping[str, np.ndarray], Mapping[str, Sequence[str | None]]]


class ScoringModel(Protocol):
    """Validated inputs in (rows or texts), class probabilities out, in ``classes`` order."""

    @property
    def classes(self) -> tuple[str, ...]: ...

    def predict_proba(self, inputs: Sequence[Any]) -> np.ndarray: ...

    def drift_values(self, inputs: Sequence[Any]) -> DriftValues:
        """What the drift windows see of ``inputs``: numbers (NaN = missing), categories."""
        ...

    def smoke_inputs(self) -> list[Any]:
        """A few valid inputs a freshly loaded version must score before it takes traffic."""
        ...


@dataclass(frozen=True, eq=False)
class LoadedModel:
    tag: str
    name: str
    version: str
    contract: ServingContract
    scorer: ScoringModel
