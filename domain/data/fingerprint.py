"""Content fingerprint of a dataset: the same data always gives the same hash."""

from __future__ import annotations

import hashlib

import pandas as pd
from pydantic import BaseModel, ConfigDict


class DatasetFingerprint(BaseModel):
    model_config = ConfigDict(frozen=True)

    sha256: str
    rows: int
    columns: int

    @property
    def short(self) -> str:
        return self.sha256[:12]


def fingerprint_frame(frame: pd.DataFrame) -> DatasetFingerprint:
    """Hash of column names, dtypes and every cell (row order matters, the index does not)."""
    digest = hashlib.sha256()
    for name, dtype in zip(frame.columns, frame.dtypes, strict=True):
        digest.update(f"{name}\x1f{dtype}\x1e".encode())
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest.update(row_hashes.tobytes())
    return DatasetFingerprint(sha256=digest.hexdigest(), rows=len(frame), columns=frame.shape[1])
