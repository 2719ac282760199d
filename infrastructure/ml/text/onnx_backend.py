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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from infrastructure.ml.text.classifier import score_in_passes

logger = logging.getLogger(__name__)

ONNX_FOLDER = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
SAMPLE_TEXTS = ["a fine film .", "dull , lifeless and far too long for what it has to say ."]


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
    """Same contract as ``TransformersTextClassifier`` (length-sorted, padded passes)."""

    device = "cpu"

    def __init__(self, session: Any, tokenizer: Any, max_length: int, classes: list[str]) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.classes = classes
        self._inputs = [item.name for item in session.get_inputs()]

    @classmethod
    def load(
        cls, model_dir: Path, onnx_file: Path, max_length: int, threads: int = 0
    ) -> OnnxTextClassifier:
        import onnxruntime
        from transformers import AutoConfig, AutoTokenizer

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        config = AutoConfig.from_pretrained(str(model_dir))
        classes = [config.id2label[i] for i in range(config.num_labels)]
        return cls(session, AutoTokenizer.from_pretrained(str(model_dir)), max_length, classes)

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
        )

    def _pass_probabilities(self, features: dict[str, list[Any]]) -> np.ndarray:
        batch = self.tokenizer.pad(
            {name: features[name] for name in self._inputs}, return_tensors="np"
        )
        logits = self.session.run(
            None, {name: batch[name].astype(np.int64) for name in self._inputs}
        )[0]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
        return probabilities
