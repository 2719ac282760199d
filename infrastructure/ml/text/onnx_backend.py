"""ONNX Runtime for a stored text classifier: export, int8 quantization, scoring, the guard.

The export is ``torch.onnx.export`` (the dynamo exporter, batch and sequence dynamic), and
int8 is ONNX Runtime's own dynamic quantization with per-channel weight scales: plain
per-tensor int8 cost 1.6 accuracy points on the quick SST-2 model, per-channel 0.1 (README).
Both files are written into the stored model's own folder in the BentoML store (``onnx/``)
on first use, so every later load, worker and replica reads them back. Writers take a file
lock and move the finished file in place, so two workers never see half a file.
"""

from __future__ import annotations

import fcntl
import logging
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from infrastructure.ml.device import usable_cores
from infrastructure.ml.text.classifier import CPU_FORWARD_TOKENS, pad_pass, score_in_passes

logger = logging.getLogger(__name__)

ONNX_FOLDER = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
SAMPLE_TEXTS = ["a fine film .", "dull , lifeless and far too long for what it has to say ."]
# Passes scored side by side on one thread each are fastest a little shorter than one pass
# on all threads: 96-128 tokens read 1,356-1,503 texts/s at batch 64 (int8, 2 cores), 256
# read 1,224-1,261 and 512 928-959 (README, "ONNX Runtime scores passes side by side").
SIDE_BY_SIDE_FORWARD_TOKENS = 128


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def export_onnx(model_dir: Path) -> Path:
    """``onnx/model.onnx`` in ``model_dir``, exported now unless it is already there."""
    folder = model_dir / ONNX_FOLDER
    target = folder / FP32_FILE
    with _locked(folder):
        if target.exists():
            return target
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        sample = tokenizer(SAMPLE_TEXTS, padding=True, return_tensors="pt")
        names = list(sample.keys())

        class Logits(torch.nn.Module):
            """The classifier with positional inputs in the tokenizer's order, logits out."""

            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs: Any) -> Any:
                return self.inner(**dict(zip(names, inputs, strict=True))).logits

        batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            staged = Path(scratch) / FP32_FILE
            torch.onnx.export(
                Logits(model),
                tuple(sample[name] for name in names),
                str(staged),
                input_names=names,
                output_names=["logits"],
                # One entry for ``*inputs``, holding one spec per tensor in it.
                dynamic_shapes=(tuple({0: batch, 1: sequence} for _ in names),),
                dynamo=True,
                external_data=False,
                optimize=True,
            )
            staged.replace(target)
        logger.info("exported %s to ONNX (%d bytes)", model_dir.name, target.stat().st_size)
    return target


def quantize_int8(model_dir: Path) -> Path:
    """``onnx/model.int8.onnx``: dynamic int8 with per-channel weight scales."""
    source = export_onnx(model_dir)
    folder = source.parent
    target = folder / INT8_FILE
    with _locked(folder):
        if target.exists():
            return target
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            staged = Path(scratch) / INT8_FILE
            quantize_dynamic(source, staged, weight_type=QuantType.QInt8, per_channel=True)
            staged.replace(target)
        logger.info("quantized %s to int8 (%d bytes)", model_dir.name, target.stat().st_size)
    return target


class OnnxTextClassifier:
    """Same contract as ``TransformersTextClassifier`` (length-sorted, padded passes).

    ``side_by_side`` > 1 scores that many passes at once, each on one ONNX Runtime thread,
    instead of one pass at a time on all of them. On 2 cores that scored 1.5x the texts/s
    (int8 at batch 64: 1,356-1,503 against 923-937): a small model's pass is too short for
    intra-op threads to share well, and each thread also pads its own pass. The session is
    shared: ``InferenceSession.run`` is safe to call from several threads.
    """

    device = "cpu"

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        max_length: int,
        classes: list[str],
        side_by_side: int = 1,
    ) -> None:
        if side_by_side < 1:
            raise ValueError(f"side_by_side must be >= 1, got {side_by_side}")
        self.session = session
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.classes = classes
        self.side_by_side = side_by_side
        self._inputs = [item.name for item in session.get_inputs()]
        # Started with the model, not per batch: a batch must not pay for thread start-up.
        self._passes = (
            ThreadPoolExecutor(side_by_side, thread_name_prefix="onnx-pass")
            if side_by_side > 1
            else None
        )

    @classmethod
    def load(
        cls,
        model_dir: Path,
        onnx_file: Path,
        max_length: int,
        threads: int = 0,
        side_by_side: bool = False,
    ) -> OnnxTextClassifier:
        """``threads`` CPU threads (0: every usable core); with ``side_by_side``, spent as
        that many passes at once of one thread each, else as one pass's intra-op threads
        (0 there: ONNX Runtime's default)."""
        import onnxruntime
        from transformers import AutoConfig, AutoTokenizer

        passes = (threads or usable_cores()) if side_by_side else 1
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if passes > 1:
            options.intra_op_num_threads = 1
        elif threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        config = AutoConfig.from_pretrained(str(model_dir))
        classes = [config.id2label[i] for i in range(config.num_labels)]
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        return cls(session, tokenizer, max_length, classes, passes)

    @property
    def forward_tokens(self) -> int:
        """The padded-token budget per pass this model scores fastest at."""
        return SIDE_BY_SIDE_FORWARD_TOKENS if self.side_by_side > 1 else CPU_FORWARD_TOKENS

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, max_tokens: int = 0
    ) -> np.ndarray:
        return score_in_passes(
            self.tokenizer,
            texts,
            self.max_length,
            len(self.classes),
            self._pass_probabilities,
            batch_size,
            max_tokens,
            self._passes,
        )

    def _pass_probabilities(self, features: dict[str, list[Any]]) -> np.ndarray:
        batch = pad_pass(
            {name: features[name] for name in self._inputs},
            self.tokenizer.pad_token_id,
            self.tokenizer.padding_side,
        )
        logits = self.session.run(None, batch)[0]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
        return probabilities
