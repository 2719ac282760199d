"""The held-out split registered with a text model, and accuracy on it: what every
reduced-precision option (ONNX int8, CUDA fp16/bf16/TF32) is checked against before it serves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infrastructure.store.bento_model_store import TEST_SPLIT_FILE


def stored_test_split(model_dir: Path) -> tuple[list[str], list[str]] | None:
    """The held-out texts and labels registered with the model, if it has them."""
    path = model_dir / TEST_SPLIT_FILE
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row["text"] for row in rows], [str(row["label"]) for row in rows]


def accuracy(classifier: Any, texts: Sequence[str], labels: Sequence[str]) -> float:
    scores = classifier.predict_proba(list(texts), batch_size=64, max_tokens=0)
    predicted = np.asarray(classifier.classes)[scores.argmax(axis=1)]
    return float(np.mean(predicted == np.asarray(labels)))
