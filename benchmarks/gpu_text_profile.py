"""Where a text batch's time goes on a GPU, per precision: the figures behind the
synthetic-GPU model of ``make bench-overhead`` and the precision choice of the text service.

For each precision (fp32, TF32 matmuls, bf16 and fp16 autocast) and batch size it times,
in one process and on SST-2 sentences in a fixed shuffle:

- ``tokenize_ms``: tokenizing the batch and padding it (CPU, holds the GIL);
- ``launch_ms``: the forward call until it returns, before synchronizing (the host's kernel
  launches, which hold the GIL);
- ``total_ms``: to probabilities on the host, so ``total - tokenize - launch`` is time the
  host only waits for the GPU;

and the accuracy on the stored test split (``data/sst2/test.tsv``) with each precision.
It needs only torch, transformers and numpy, so it runs on a bare GPU machine; the model is
a folder with ``config.json``, tokenizer files and weights (a stored model's folder).

    python -m benchmarks.gpu_text_profile MODEL_DIR -o benchmarks/reference/gpu_text_profile.json
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import platform
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
BATCH_SIZES = (1, 8, 32, 64, 128, 256)
MAX_LENGTH = 128
SEED = 2013


def sentences(name: str) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with (REPO_ROOT / "data" / "sst2" / name).open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(" ".join(row["sentence"].split()))
            labels.append(int(row["label"]))
    return texts, labels


@contextlib.contextmanager
def precision(mode: str, device: str) -> Iterator[None]:
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = mode == "tf32"
    if mode in ("bf16", "fp16"):
        dtype = torch.bfloat16 if mode == "bf16" else torch.float16
        with torch.autocast(device_type=device, dtype=dtype):
            yield
    else:
        yield


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def score(
    model: Any, tokenizer: Any, texts: list[str], device: str
) -> tuple[np.ndarray, dict[str, float]]:
    began = time.perf_counter()
    batch = tokenizer(
        texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt"
    )
    batch = batch.to(device, non_blocking=True)
    tokenized = time.perf_counter()
    logits = model(**batch).logits
    launched = time.perf_counter()
    probabilities = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    finished = time.perf_counter()
    return probabilities, {
        "tokenize_ms": (tokenized - began) * 1000.0,
        "launch_ms": (launched - tokenized) * 1000.0,
        "total_ms": (finished - began) * 1000.0,
    }


def accuracy(model: Any, tokenizer: Any, device: str) -> float:
    texts, labels = sentences("test.tsv")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    correct = 0
    for start in range(0, len(order), 64):
        chosen = order[start : start + 64]
        probabilities, _ = score(model, tokenizer, [texts[i] for i in chosen], device)
        correct += int(
            (probabilities.argmax(axis=1) == np.array([labels[i] for i in chosen])).sum()
        )
    return correct / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = args.device
    model = AutoModelForSequenceClassification.from_pretrained(
        str(args.model_dir), torch_dtype=torch.float32
    )
    model = model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(args.model_dir))
    pool, _ = sentences("dev.tsv")
    random.Random(SEED).shuffle(pool)
    report: dict[str, Any] = {
        "benchmark": "gpu_text_profile",
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "max_length": MAX_LENGTH,
        "rounds": args.rounds,
        "precisions": {},
    }
    for mode in PRECISIONS:
        if device != "cuda" and mode in ("tf32", "fp16"):
            continue
        with precision(mode, device):
            entry: dict[str, Any] = {
                "accuracy": round(accuracy(model, tokenizer, device), 4),
                "batches": {},
            }
            for size in BATCH_SIZES:
                texts = pool[:size]
                for _ in range(3):
                    score(model, tokenizer, texts, device)
                synchronize(device)
                rounds = []
                for index in range(args.rounds):
                    start = (index * size) % max(1, len(pool) - size)
                    rounds.append(score(model, tokenizer, pool[start : start + size], device)[1])
                figures = {
                    key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]
                }
                figures["texts_per_s"] = round(size / figures["total_ms"] * 1000.0, 1)
                entry["batches"][str(size)] = figures
                print(mode, size, figures, flush=True)
            report["precisions"][mode] = entry
            print(mode, "accuracy", entry["accuracy"], flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
