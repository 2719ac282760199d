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
        """Class probabilities in input order; forward passes of at most ``batch_size`` texts.

        Texts are grouped by length before they are cut into forward passes, so each pass
        pads to a length close to its texts' own: on mixed-length traffic this saves most of
        the compute a pass would spend on padding.
        """
        probabilities = np.zeros((len(texts), len(self.classes)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in chosen],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            logits = self.model(**batch).logits
            probabilities[chosen] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return probabilities

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(texts).argmax(axis=1)]
