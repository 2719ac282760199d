"""A fine-tuned sequence classifier loaded from a folder (weights + tokenizer + labels)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from infrastructure.ml.device import detect_device

Precision = Literal["fp32", "tf32", "bf16", "fp16"]
CompileMode = Literal["default", "reduce-overhead"]
AUTOCAST_TYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Padded tokens per forward pass on CPU, measured on 2 cores over SST-2 sentences (README,
# "Serve (text)"): length-sorted passes of at most 256 padded tokens served 277-355 texts/s
# at batch 64, passes of 8 texts 220-306 and one pass of 64 texts 130; budgets of 96-128
# tokens lost at batch 64, 1024+ at every size.
CPU_FORWARD_TOKENS = 256


@contextmanager
def tf32_matmuls() -> Iterator[None]:
    """TF32 for this pass only: the flag is process-wide, and the fp32 reference the
    accuracy guard measures must stay fp32."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


class TransformersTextClassifier:
    """Eval mode, inference mode, batches padded to their own longest text; on CUDA the
    forward passes can run with TF32 matmuls or under bf16/fp16 autocast."""

    # One pass at a time, torch's intra-op threads sharing it (ONNX Runtime's backend can
    # score several at once).
    side_by_side = 1

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_length: int,
        device: str,
        precision: Precision = "fp32",
    ) -> None:
        if precision != "fp32" and not device.startswith("cuda"):
            raise ValueError(f"precision {precision} needs a CUDA device, not {device}")
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = device
        self.precision: Precision = precision
        config = model.config
        self.classes: list[str] = [config.id2label[i] for i in range(config.num_labels)]

    @property
    def forward_tokens(self) -> int:
        """The padded-token budget per pass this model scores fastest at (0: a whole batch)."""
        return CPU_FORWARD_TOKENS if self.device == "cpu" else 0

    @classmethod
    def load(
        cls, folder: Path, max_length: int, device: str = "auto"
    ) -> TransformersTextClassifier:
        chosen = detect_device(device)
        model = AutoModelForSequenceClassification.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return cls(model, tokenizer, max_length, chosen)

    @torch.inference_mode()
    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, max_tokens: int = 0
    ) -> np.ndarray:
        """Class probabilities in input order.

        Texts are tokenized together, ordered by token count and cut into forward passes of
        at most ``batch_size`` texts and, when ``max_tokens`` is set, at most that many
        padded tokens. Each pass then pads only to a length close to its texts' own; on
        mixed-length traffic on a CPU that saves most of the compute padding would cost.
        """
        return score_in_passes(
            self.tokenizer,
            texts,
            self.max_length,
            len(self.classes),
            self._pass_probabilities,
            batch_size,
            max_tokens,
        )

    def with_precision(self, precision: Precision) -> TransformersTextClassifier:
        """The same weights (not copied) scored at another precision."""
        return TransformersTextClassifier(
            self.model, self.tokenizer, self.max_length, self.device, precision
        )

    def compiled(self, mode: CompileMode = "default") -> TransformersTextClassifier:
        """The same weights behind ``torch.compile``, shapes dynamic from the start.

        Dynamic, because every pass has its own batch and sequence length: compiled for the
        first shape only, each new length would compile again. Only a pass of one text still
        compiles once more (sizes 0 and 1 are always specialized), which the warm-up's batch
        of one takes care of before traffic. Compiling happens on the first call.
        """
        if mode == "reduce-overhead" and not self.device.startswith("cuda"):
            raise ValueError(f"{mode} records CUDA graphs, and this model is on {self.device}")
        model = torch.compile(self.model, mode=mode, dynamic=True)
        return TransformersTextClassifier(
            model, self.tokenizer, self.max_length, self.device, self.precision
        )

    def _pass_probabilities(self, features: dict[str, list[Any]]) -> np.ndarray:
        padded = pad_pass(features, self.tokenizer.pad_token_id, self.tokenizer.padding_side)
        batch = {name: torch.from_numpy(values).to(self.device) for name, values in padded.items()}
        if self.precision in AUTOCAST_TYPES:
            mode: Any = torch.autocast("cuda", dtype=AUTOCAST_TYPES[self.precision])
        else:
            mode = tf32_matmuls() if self.precision == "tf32" else nullcontext()
        with mode:
            logits = self.model(**batch).logits
        probabilities: np.ndarray = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return probabilities

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(texts).argmax(axis=1)]


def score_in_passes(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    classes: int,
    probabilities_of: Callable[[dict[str, list[Any]]], np.ndarray],
    batch_size: int,
    max_tokens: int,
    pool: Executor | None = None,
) -> np.ndarray:
    """Tokenize ``texts`` together, cut them into length-sorted passes
    (:func:`plan_forward_passes`) and score each pass with ``probabilities_of`` (one pass's
    unpadded features in, its class probabilities out); results in input order. Shared by
    every backend, so they all pad and batch alike.

    With ``pool``, the passes run in that executor's threads at once, the costliest first,
    so that the last one to start is a short one and no thread idles long at the end.
    """
    probabilities = np.zeros((len(texts), classes), dtype=np.float32)
    if not texts:
        return probabilities
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    passes = plan_forward_passes(lengths, batch_size, max_tokens)

    def score(chosen: list[int]) -> None:
        features = {name: [values[i] for i in chosen] for name, values in encoded.items()}
        # Passes hold disjoint rows, so threads writing side by side never meet.
        probabilities[chosen] = probabilities_of(features)

    if pool is None or len(passes) == 1:
        for chosen in passes:
            score(chosen)
    else:
        # Padded cost: a pass's longest text is its last (plan_forward_passes sorts them).
        passes.sort(key=lambda chosen: len(chosen) * lengths[chosen[-1]], reverse=True)
        # Drained, not just started: this waits for every pass and re-raises a pass's error.
        list(pool.map(score, passes))
    return probabilities


def pad_pass(
    features: dict[str, list[list[int]]], pad_token_id: int | None, side: str = "right"
) -> dict[str, np.ndarray]:
    """One pass's token features as int64 arrays padded to its longest text: ``input_ids``
    with ``pad_token_id``, the rest (attention mask, token types) with 0, on ``side``.

    Hand-written rather than ``tokenizer.pad``: that spent 63 us of Python per int8 pass
    of SST-2 sentences against 20 here, under the GIL the other pass threads and the event
    loop wait for (raw int8 at batch 64, 8 interleaved runs: median 1,351 texts/s against
    1,320, the same probabilities).
    """
    rows = features["input_ids"]
    width = max((len(row) for row in rows), default=0)
    padded = {}
    for name, values in features.items():
        fill = (pad_token_id or 0) if name == "input_ids" else 0
        array = np.full((len(rows), width), fill, dtype=np.int64)
        for index, row in enumerate(values):
            start = width - len(row) if side == "left" else 0
            array[index, start : start + len(row)] = row
        padded[name] = array
    return padded


def plan_forward_passes(
    lengths: Sequence[int], max_texts: int, max_tokens: int = 0
) -> list[list[int]]:
    """Indices of ``lengths`` grouped into forward passes, shortest texts first.

    A pass holds at most ``max_texts`` texts and, if ``max_tokens`` > 0, at most that many
    tokens once padded to its longest text; a text longer than the budget gets a pass alone.
    """
    if max_texts < 1:
        raise ValueError(f"max_texts must be >= 1, got {max_texts}")
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    passes: list[list[int]] = []
    current: list[int] = []
    for index in order:
        too_many = len(current) >= max_texts
        too_long = max_tokens > 0 and (len(current) + 1) * lengths[index] > max_tokens
        if current and (too_many or too_long):
            passes.append(current)
            current = []
        current.append(index)
    if current:
        passes.append(current)
    return passes
