"""Train/test split, stratified by class when asked (and possible)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.errors import DataError


def split_indices(
    labels: pd.Series, test_size: float, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions for train and test; each class keeps its share in both when stratified."""
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    n = len(labels)
    if stratify:
        train: list[int] = []
        test: list[int] = []
        codes = labels.astype(str).to_numpy()
        for label in sorted(set(codes)):
            positions = np.flatnonzero(codes == label)
            if len(positions) < 2:
                raise DataError(
                    f"class {label!r} has {len(positions)} row(s); stratified split needs >= 2"
                )
            rng.shuffle(positions)
            n_test = min(max(1, round(len(positions) * test_size)), len(positions) - 1)
            test.extend(positions[:n_test].tolist())
            train.extend(positions[n_test:].tolist())
        return np.sort(np.array(train)), np.sort(np.array(test))
    order = rng.permutation(n)
    n_test = max(1, round(n * test_size))
    return np.sort(order[n_test:]), np.sort(order[:n_test])
