"""Use case: fine-tune a text classifier, track it, gate it, register it as challenger, store it.

Promotion, validation and rollback are the same use cases as for tabular models: the
registered version carries the gate threshold and its held-out split (`evaluation/test.parquet`
with a `text` column), and its MLflow model is a pyfunc that predicts class names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from application.training.jobs import TextJobConfig
from application.training.registration import gate_record, link_stored_model, store_labels
from domain.data.fingerprint import DatasetFingerprint, fingerprint_frame
from domain.data.split import split_indices
from domain.data.text import LabelEncoding, clean_texts, label_encoding, text_reference_profile
from domain.evaluation.behaviour import BehaviourReport, run_behaviour_checks
from domain.evaluation.classification import (
    ClassificationReport,
    classification_report,
    held_out_metric_keys,
)
from domain.models.contract import (
    HELD_OUT_ARTIFACT,
    SERVING_CONTRACT_ARTIFACT,
    TEXT_TASK,
    ServingContract,
)
from domain.models.policy import GateDecision, evaluate_gate
from domain.models.version import ModelVersionInfo
from domain.ports import (
    DatasetLoader,
    ExperimentTracker,
    FittedTextModel,
    ModelRegistry,
    ModelStore,
    TextModelLogger,
    TextTrainer,
)
from shared.types import CHALLENGER

logger = logging.getLogger(__name__)
TEXT = "text"
LABEL = "label"


@dataclass(frozen=True)
class TextSplits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    encoding: LabelEncoding


@dataclass(frozen=True)
class TextTrainingOutcome:
    run_id: str
    fit: FittedTextModel
    report: ClassificationReport
    behaviour: BehaviourReport
    gate: GateDecision
    registered: ModelVersionInfo
    stored_tag: str
    rows: dict[str, int]


def load_text_splits(job: TextJobConfig, loader: DatasetLoader) -> TextSplits:
    """Files as given, or ``source`` split (stratified, seeded) into train/validation/test.

    Columns are renamed to ``text`` and ``label`` (class names) from here on.
    """
    data = job.dataset

    def read(source: str) -> pd.DataFrame:
        frame = clean_texts(loader.load(source), data.text_column, data.label_column)
        return frame.rename(columns={data.text_column: TEXT, data.label_column: LABEL})

    seed = job.training.seed
    pool_source = data.source if data.source is not None else data.train
    assert pool_source is not None  # the config requires one of them
    pool = read(pool_source)
    # Fractions are shares of the pool (source or train) before anything is split off it.
    test_frame: pd.DataFrame
    if data.test is not None:
        test_frame = read(data.test)
    else:
        rest, test_idx = split_indices(pool[LABEL].astype(str), data.test_fraction, seed, True)
        pool, test_frame = pool.iloc[rest].reset_index(drop=True), pool.iloc[test_idx]
    if data.validation is not None:
        train, validation = pool, read(data.validation)
    else:
        taken = 0.0 if data.test is not None else data.test_fraction
        share = data.validation_fraction / (1.0 - taken)
        train_idx, val_idx = split_indices(pool[LABEL].astype(str), share, seed, True)
        train, validation = pool.iloc[train_idx], pool.iloc[val_idx]
    if data.max_train_rows is not None and len(train) > data.max_train_rows:
        train = train.sample(n=data.max_train_rows, random_state=seed)
    if data.max_validation_rows is not None and len(validation) > data.max_validation_rows:
        validation = validation.sample(n=data.max_validation_rows, random_state=seed)
    encoding = label_encoding(train[LABEL].tolist(), data.label_names)

    def named(frame: pd.DataFrame) -> pd.DataFrame:
        names = [encoding.names[i] for i in encoding.ids(frame[LABEL].tolist())]
        return frame.assign(**{LABEL: names}).reset_index(drop=True)

    return TextSplits(named(train), named(validation), named(test_frame), encoding)


def train_text(
    job: TextJobConfig,
    loader: DatasetLoader,
    trainer: TextTrainer,
    tracker: ExperimentTracker,
    model_logger: TextModelLogger,
    registry: ModelRegistry,
    store: ModelStore,
    workdir: Path,
    progress: Callable[[str], None] | None = None,
) -> TextTrainingOutcome:
    say = progress or (lambda message: logger.info(message))
    say("loading text dataset")
    splits = load_text_splits(job, loader)
    classes = list(splits.encoding.names)
    fingerprints: dict[str, DatasetFingerprint] = {
        name: fingerprint_frame(frame)
        for name, frame in (
            ("train", splits.train),
            ("validation", splits.validation),
            ("test", splits.test),
        )
    }
    rows = {name: fp.rows for name, fp in fingerprints.items()}
    run_tags = {
        "job": job.registered_model_name,
        "task": "text-classification",
        "dataset.sha256": fingerprints["train"].sha256,
        "base_model": job.base_model,
        "method": job.method,
    }
    with tracker.training_run(
        job.experiment, f"finetune-{job.registered_model_name}", run_tags
    ) as run_id:
        tracker.log_params(_flatten(job.model_dump(mode="json", exclude={"behaviour"})))
        for name, frame in (
            ("train", splits.train),
            ("validation", splits.validation),
            ("test", splits.test),
        ):
            tracker.log_dataset(frame, fingerprints[name], name, name)
        tracker.log_frame(splits.test[[TEXT, LABEL]], HELD_OUT_ARTIFACT)
        tracker.log_metrics({f"{name}_rows": float(count) for name, count in rows.items()})

        index = {name: i for i, name in enumerate(classes)}

        def ids(frame: pd.DataFrame) -> list[int]:
            return [index[name] for name in frame[LABEL]]

        say(f"fine-tuning {job.base_model} ({job.method}) on {rows['train']} texts")
        fit = trainer.fit(
            job,
            (splits.train[TEXT].tolist(), ids(splits.train)),
            (splits.validation[TEXT].tolist(), ids(splits.validation)),
            classes,
            workdir,
            tracker.log_metrics,
            say,
        )
        say(f"evaluating on {rows['test']} test texts")
        predicted = fit.model.predict(splits.test[TEXT].tolist())
        report = classification_report(splits.test[LABEL].tolist(), predicted, classes)
        metrics = report.metrics()
        run_figures = {
            "train_seconds": fit.train_seconds,
            "train_samples_per_second": fit.samples_per_second,
            "peak_memory_mb": fit.peak_memory_mb,
            "trainable_parameters": float(fit.trainable_parameters),
            "total_parameters": float(fit.total_parameters),
            "best_step": float(fit.best_step),
            "steps": float(fit.steps),
        }
        tracker.log_metrics({**held_out_metric_keys(report), **run_figures})
        tracker.log_json(report.model_dump(mode="json"), "classification_report.json")
        tracker.log_confusion_matrix(report, "confusion_matrix.png")
        behaviour = run_behaviour_checks(
            fit.model.predict, job.behaviour.invariance_texts, job.behaviour.negation_pairs
        )
        tracker.log_metrics(behaviour.metrics())
        tracker.log_json(behaviour.model_dump(mode="json"), "behaviour_checks.json")
        profile = text_reference_profile(splits.train[TEXT].tolist(), splits.train[LABEL].tolist())
        tracker.log_json(profile.model_dump(mode="json"), "reference_profile.json")
        gate = evaluate_gate(metrics, job.gate)
        say(gate.describe())
        tracker.set_tags(
            {
                "gate.passed": str(gate.passed).lower(),
                "gate.value": f"{gate.value:.6f}",
                "device": fit.device,
                "stopped_early": str(fit.stopped_early).lower(),
            }
        )

        say("registering the fine-tuned model")
        version_tags = {
            "task": "text-classification",
            "target": LABEL,
            "base_model": job.base_model,
            "method": job.method,
            "dataset.sha256": fingerprints["train"].sha256,
            "gate.metric": job.gate.metric,
            "gate.threshold": str(job.gate.threshold),
            "gate.passed": str(gate.passed).lower(),
        }
        registered = model_logger.log_text_classifier(
            fit.model_dir,
            job.registered_model_name,
            splits.test[[TEXT]].head(3),
            job.max_length,
            version_tags,
        )
        registry.set_alias(job.registered_model_name, CHALLENGER, registered.version)
        contract = ServingContract(
            task=TEXT_TASK,
            classes=tuple(classes),
            metrics=metrics,
            reference_profile=profile,
            gate=gate_record(gate),
            max_length=job.max_length,
            base_model=job.base_model,
            method=job.method,
            dataset_fingerprint=fingerprints["train"],
            training=run_figures,
        )
        # Kept with the run too, so a service can pull this version from MLflow alone.
        tracker.log_json(contract.to_metadata(), SERVING_CONTRACT_ARTIFACT)
        say("saving the model into the BentoML store")
        stored_tag = store.save_text_model(
            job.registered_model_name,
            fit.model_dir,
            labels=store_labels(run_id, registered, fingerprints["train"].short, TEXT_TASK),
            contract=contract,
            test_examples=list(
                zip(splits.test[TEXT].astype(str), splits.test[LABEL].astype(str), strict=True)
            ),
        )
        link_stored_model(registry, tracker, registered, stored_tag)
    return TextTrainingOutcome(
        run_id=run_id,
        fit=fit,
        report=report,
        behaviour=behaviour,
        gate=gate,
        registered=registered,
        stored_tag=stored_tag,
        rows=rows,
    )


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value if not isinstance(value, list) else ",".join(map(str, value))
    return flat
