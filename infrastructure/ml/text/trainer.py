"""Fine-tuning loop for sequence classification: full or LoRA, early stopping, 2 checkpoints.

A plain torch loop rather than HF ``Trainer``: it keeps the focal/weighted losses, the
evaluation cadence and the checkpoint policy (best + last only) explicit, and it runs the
same on CUDA, MPS and CPU. Deterministic on CPU for a given seed.
"""

from __future__ import annotations

import math
import random
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)

from application.training.jobs import TextJobConfig
from domain.evaluation.classification import classification_report
from infrastructure.ml.device import detect_device
from infrastructure.ml.text.base_model import resolve_base_model
from infrastructure.ml.text.classifier import TransformersTextClassifier
from infrastructure.ml.text.losses import balanced_class_weights, classification_loss
from shared.errors import ConfigError

MetricsSink = Callable[[dict[str, float], int], None]


@dataclass(frozen=True)
class TextFitResult:
    model: TransformersTextClassifier
    model_dir: Path
    device: str
    steps: int
    best_step: int
    best_metric: float
    stopped_early: bool
    train_seconds: float
    samples_per_second: float
    peak_memory_mb: float
    trainable_parameters: int
    total_parameters: int
    history: list[dict[str, float]] = field(default_factory=list)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _new_modules(missing_keys: Sequence[str]) -> list[str]:
    """Modules the checkpoint lacks (the head, and a pooler in sentence-embedding models).

    They start random, so LoRA must train them fully rather than freeze them.
    """
    names = {
        key.split(".")[-3] if key.count(".") >= 2 else key.split(".")[0] for key in missing_keys
    }
    return sorted(names | {"classifier"})


class TransformersTextTrainer:
    def fit(
        self,
        spec: Any,
        train: tuple[Sequence[str], Sequence[int]],
        validation: tuple[Sequence[str], Sequence[int]],
        classes: Sequence[str],
        workdir: Path,
        on_metrics: MetricsSink,
        progress: Callable[[str], None],
    ) -> TextFitResult:
        job: TextJobConfig = spec
        settings = job.training
        _seed_everything(settings.seed)
        if settings.num_threads:
            torch.set_num_threads(settings.num_threads)
        try:
            device = detect_device(settings.device)
        except ValueError as error:
            raise ConfigError(f"training.device: {error}") from None
        base = resolve_base_model(job.base_model)
        tokenizer = AutoTokenizer.from_pretrained(base)
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(classes),
            id2label=dict(enumerate(classes)),
            label2id={name: i for i, name in enumerate(classes)},
            output_loading_info=True,
        )
        if job.method == "lora":
            from peft import LoraConfig, TaskType, get_peft_model

            model = get_peft_model(
                model,
                LoraConfig(
                    task_type=TaskType.SEQ_CLS,
                    r=job.lora.r,
                    lora_alpha=job.lora.alpha,
                    lora_dropout=job.lora.dropout,
                    target_modules=list(job.lora.target_modules),
                    modules_to_save=_new_modules(loading.get("missing_keys", [])),
                ),
            )
        model.to(device)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())

        texts, labels = list(train[0]), np.asarray(train[1])
        encoded = tokenizer(texts, truncation=True, max_length=job.max_length)["input_ids"]
        steps_per_epoch = math.ceil(len(texts) / settings.batch_size)
        total_steps = settings.max_steps or math.ceil(settings.epochs * steps_per_epoch)
        eval_every = settings.eval_every_steps or steps_per_epoch
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=settings.learning_rate,
            weight_decay=settings.weight_decay,
        )
        scheduler = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
            optimizer, int(settings.warmup_ratio * total_steps), total_steps
        )
        alpha = self._class_weights(job, labels, len(classes))
        checkpoints = workdir / "checkpoints"
        shutil.rmtree(checkpoints, ignore_errors=True)

        history: list[dict[str, float]] = []
        best_metric, best_step, stale = -math.inf, 0, 0
        best_state: dict[str, torch.Tensor] | None = None
        step, seen, running, stopped_early = 0, 0, 0.0, False
        log_every = max(1, eval_every // 10)
        started = time.perf_counter()
        model.train()
        epoch = 0
        while step < total_steps and not stopped_early:
            order = np.random.default_rng(settings.seed + epoch).permutation(len(texts))
            epoch += 1
            for start in range(0, len(order), settings.batch_size):
                if step >= total_steps:
                    break
                index = order[start : start + settings.batch_size]
                batch = tokenizer.pad(
                    {"input_ids": [encoded[i] for i in index]}, return_tensors="pt"
                ).to(device)
                targets = torch.as_tensor(labels[index], device=device)
                logits = model(**batch).logits
                loss = classification_loss(logits, targets, job.loss.kind, job.loss.gamma, alpha)
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                seen += len(index)
                running += float(loss.detach())
                if step % log_every == 0:
                    on_metrics(
                        {
                            "train_loss": running / log_every,
                            "learning_rate": scheduler.get_last_lr()[0],
                        },
                        step,
                    )
                    running = 0.0
                if step % eval_every == 0 or step == total_steps:
                    scores = self._evaluate(
                        model, tokenizer, validation, classes, job, device, alpha
                    )
                    elapsed = time.perf_counter() - started
                    scores["train_samples_per_second"] = seen / elapsed
                    on_metrics(scores, step)
                    history.append({"step": float(step), **scores})
                    model.save_pretrained(str(checkpoints / "last"))
                    metric = scores[f"val_{settings.metric}"]
                    progress(
                        f"step {step}/{total_steps}: val {settings.metric} {metric:.4f} "
                        f"({seen / elapsed:.1f} samples/s on {device})"
                    )
                    if metric > best_metric:
                        best_metric, best_step, stale = metric, step, 0
                        best_state = {
                            k: v.detach().to("cpu", copy=True)
                            for k, v in model.state_dict().items()
                        }
                        shutil.rmtree(checkpoints / "best", ignore_errors=True)
                        shutil.copytree(checkpoints / "last", checkpoints / "best")
                    else:
                        stale += 1
                        if stale >= settings.early_stopping_patience:
                            stopped_early = True
                            progress(f"early stop at step {step}: best was step {best_step}")
                            break
                    model.train()
        train_seconds = time.perf_counter() - started
        if best_state is not None:
            model.load_state_dict(best_state)
        if job.method == "lora":
            model = model.merge_and_unload()
        model_dir = workdir / "model"
        shutil.rmtree(model_dir, ignore_errors=True)
        model.save_pretrained(str(model_dir))
        tokenizer.save_pretrained(str(model_dir))
        return TextFitResult(
            model=TransformersTextClassifier(model, tokenizer, job.max_length, device),
            model_dir=model_dir,
            device=device,
            steps=step,
            best_step=best_step,
            best_metric=best_metric,
            stopped_early=stopped_early,
            train_seconds=train_seconds,
            samples_per_second=seen / train_seconds if train_seconds else 0.0,
            peak_memory_mb=_peak_memory_mb(device),
            trainable_parameters=trainable,
            total_parameters=total,
            history=history,
        )

    @staticmethod
    def _class_weights(job: TextJobConfig, labels: np.ndarray, classes: int) -> torch.Tensor | None:
        if job.loss.kind == "weighted_ce":
            return balanced_class_weights(np.bincount(labels, minlength=classes).tolist())
        if job.loss.kind == "focal" and job.loss.alpha is not None:
            if len(job.loss.alpha) != classes:
                raise ConfigError(f"loss.alpha: needs one weight per class ({classes})")
            return torch.tensor(job.loss.alpha, dtype=torch.float32)
        return None

    @staticmethod
    @torch.inference_mode()
    def _evaluate(
        model: Any,
        tokenizer: Any,
        validation: tuple[Sequence[str], Sequence[int]],
        classes: Sequence[str],
        job: TextJobConfig,
        device: str,
        alpha: torch.Tensor | None,
    ) -> dict[str, float]:
        model.eval()
        texts, labels = list(validation[0]), list(validation[1])
        predictions: list[int] = []
        losses = []
        size = job.training.eval_batch_size
        for start in range(0, len(texts), size):
            batch = tokenizer(
                texts[start : start + size],
                padding=True,
                truncation=True,
                max_length=job.max_length,
                return_tensors="pt",
            ).to(device)
            logits = model(**batch).logits
            targets = torch.as_tensor(labels[start : start + size], device=device)
            losses.append(
                float(classification_loss(logits, targets, job.loss.kind, job.loss.gamma, alpha))
                * len(targets)
            )
            predictions += logits.argmax(dim=-1).tolist()
        report = classification_report(
            [classes[i] for i in labels], [classes[i] for i in predictions], list(classes)
        )
        metrics = report.metrics()
        return {
            "val_loss": sum(losses) / max(len(texts), 1),
            **{f"val_{name}": value for name, value in metrics.items()},
        }
