"""A fine-tuned sequence classifier loaded from a folder (weights + tokenizer + labels)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from infrastructure.ml.device import detect_device


class TransformersTextClassifier:
    """Eval mode, inference mode, batches padded to their own longest text."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_length: int,
        device: str,
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = device
        config = model.config
        self.classes: list[str] = [config.id2label[i] for i in range(config.num_labels)]

    @classmethod
    def load(
        cls, folder: Path, max_length: int, device: str = "auto"
    ) -> TransformersTextClassifier:
        chosen = detect_device(device)
        model = AutoModelForSequenceClassification.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return cls(model, tokenizer, max_length, chosen)

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            logits = self.model(**batch).logits
            chunks.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        if not chunks:
            return np.zeros((0, len(self.classes)))
        return np.concatenate(chunks)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(texts).argmax(axis=1)]
