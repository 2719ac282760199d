"""Use case: train candidate models on a table, pick the best, register it as challenger."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from application.training.jobs import TabularJobConfig
from application.training.registration import gate_record, link_stored_model, store_labels
from domain.data.fingerprint import DatasetFingerprint, fingerprint_frame
from domain.data.quality import QualityReport, assess_quality
from domain.data.schema import FeatureSchema, infer_feature_schema, prepare_features
from domain.data.split import split_indices
from domain.evaluation.classification import (
    ClassificationReport,
    classification_report,
    held_out_metric_keys,
)
from domain.models.contract import SERVING_CONTRACT_ARTIFACT, TABULAR_TASK, ServingContract
from domain.models.policy import GateDecision, evaluate_gate
from domain.models.version import ModelVersionInfo
from domain.monitoring.profile import build_reference_profile
from domain.ports import DatasetLoader, ExperimentTracker, ModelRegistry, ModelStore, TabularTrainer
from shared.types import CHALLENGER

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str], None]

# Builtin datasets name their own target column.
BUILTIN_TARGET = "target"


@dataclass(frozen=True)
class CandidateResult:
    name: str
    estimator: str
    report: ClassificationReport
    fit_seconds: float
    run_id: str


@dataclass(frozen=True)
class TrainingOutcome:
    run_id: str
    schema: FeatureSchema
    fingerprint: DatasetFingerprint
    quality: QualityReport
    candidates: list[CandidateResult]
    winner: CandidateResult
    gate: GateDecision
    registered: ModelVersionInfo
    stored_tag: str
    warnings: list[str] = field(default_factory=list)


def train_tabular(
    job: TabularJobConfig,
    loader: DatasetLoader,
    trainer: TabularTrainer,
    tracker: ExperimentTracker,
    registry: ModelRegistry,
    store: ModelStore,
    progress: ProgressCallback | None = None,
) -> TrainingOutcome:
    """Run the job end to end. ``champion`` is never touched here: only promotion moves it."""
    say = progress or (lambda message: logger.info(message))
    say(f"loading dataset {job.dataset.source}")
    frame = loader.load(job.dataset.source)
    target = job.dataset.target or BUILTIN_TARGET
    schema = infer_feature_schema(
        frame, target, job.dataset.numeric_features, job.dataset.categorical_features
    )
    fingerprint = fingerprint_frame(frame[[*schema.names, schema.target]])
    run_tags = {
        "job": job.registered_model_name,
        "dataset.source": job.dataset.source,
        "dataset.sha256": fingerprint.sha256,
        "dataset.rows": str(fingerprint.rows),
        "dataset.columns": str(fingerprint.columns),
    }
    with tracker.training_run(
        job.experiment, f"train-{job.registered_model_name}", run_tags
    ) as run_id:
        say("checking data quality")
        quality = assess_quality(frame, schema, job.quality)
        tracker.log_json(quality.model_dump(mode="json"), "quality_report.json")
        tracker.log_json(schema.model_dump(mode="json"), "feature_schema.json")
        tracker.log_params(
            {
                "dataset.source": job.dataset.source,
                "target": target,
                "numeric_features": ",".join(schema.numeric),
                "categorical_features": ",".join(schema.categorical),
                "split.test_size": job.split.test_size,
                "split.stratify": job.split.stratify,
                "split.seed": job.split.seed,
                "selection_metric": job.selection_metric,
                "gate.metric": job.gate.metric,
                "gate.threshold": job.gate.threshold,
            }
        )
        tracker.set_tags({"quality.passed": str(quality.passed).lower()})
        quality.raise_if_blocking()

        features = prepare_features(frame, schema)
        labels = frame[schema.target].astype(str)
        train_idx, test_idx = split_indices(
            labels, job.split.test_size, job.split.seed, job.split.stratify
        )
        x_train, x_test = features.iloc[train_idx], features.iloc[test_idx]
        y_train, y_test = labels.iloc[train_idx], labels.iloc[test_idx]
        tracker.log_dataset(
            frame.iloc[train_idx], fingerprint_frame(frame.iloc[train_idx]), "train", "training"
        )
        tracker.log_dataset(
            frame.iloc[test_idx], fingerprint_frame(frame.iloc[test_idx]), "test", "evaluation"
        )
        # Kept with the run so `mlops validate` re-evaluates on exactly this split.
        tracker.log_frame(
            pd.concat([x_test, y_test.rename(schema.target)], axis=1), "evaluation/test.parquet"
        )
        tracker.log_metrics({"train_rows": len(train_idx), "test_rows": len(test_idx)})

        results: list[CandidateResult] = []
        models = {}
        for number, candidate in enumerate(job.candidates, start=1):
            say(f"training candidate {number}/{len(job.candidates)}: {candidate.label}")
            with tracker.candidate_run(candidate.label) as candidate_run:
                tracker.log_params({"estimator": candidate.estimator, **candidate.params})
                started = time.perf_counter()
                model = trainer.fit(
                    candidate.estimator, candidate.params, x_train, y_train, schema, job.split.seed
                )
                fit_seconds = time.perf_counter() - started
                report = classification_report(y_test, model.predict(x_test), schema.classes)
                tracker.log_metrics({**report.metrics(), "fit_seconds": fit_seconds})
                tracker.log_json(report.model_dump(mode="json"), "classification_report.json")
                tracker.log_confusion_matrix(report, "confusion_matrix.png")
            results.append(
                CandidateResult(
                    candidate.label, candidate.estimator, report, fit_seconds, candidate_run
                )
            )
            models[candidate.label] = model

        winner = max(results, key=lambda r: r.report.metrics()[job.selection_metric])
        gate = evaluate_gate(winner.report.metrics(), job.gate)
        say(f"best candidate: {winner.name}; {gate.describe()}")
        profile = build_reference_profile(x_train, y_train, schema)
        tracker.log_metrics(held_out_metric_keys(winner.report))
        tracker.log_json(winner.report.model_dump(mode="json"), "classification_report.json")
        tracker.log_confusion_matrix(winner.report, "confusion_matrix.png")
        tracker.log_json(profile.model_dump(mode="json"), "reference_profile.json")
        tracker.set_tags(
            {
                "best_candidate": winner.name,
                "gate.passed": str(gate.passed).lower(),
                "gate.value": f"{gate.value:.6f}",
            }
        )

        say("registering the winning model")
        version_tags = {
            "candidate": winner.name,
            "estimator": winner.estimator,
            "target": schema.target,
            "dataset.sha256": fingerprint.sha256,
            "gate.metric": job.gate.metric,
            "gate.threshold": str(job.gate.threshold),
            "gate.passed": str(gate.passed).lower(),
        }
        registered = tracker.log_classifier(
            models[winner.name], job.registered_model_name, x_test.head(5), version_tags
        )
        registry.set_alias(job.registered_model_name, CHALLENGER, registered.version)

        contract = ServingContract(
            task=TABULAR_TASK,
            classes=schema.classes,
            metrics=winner.report.metrics(),
            reference_profile=profile,
            gate=gate_record(gate),
            feature_schema=schema,
            candidate=winner.name,
            estimator=winner.estimator,
            dataset_fingerprint=fingerprint,
        )
        # Kept with the run too, so a service can pull this version from MLflow alone.
        tracker.log_json(contract.to_metadata(), SERVING_CONTRACT_ARTIFACT)
        say("saving the model into the BentoML store")
        stored_tag = store.save_classifier(
            job.registered_model_name,
            models[winner.name],
            labels=store_labels(run_id, registered, fingerprint.short, TABULAR_TASK),
            contract=contract,
        )
        link_stored_model(registry, tracker, registered, stored_tag)

    return TrainingOutcome(
        run_id=run_id,
        schema=schema,
        fingerprint=fingerprint,
        quality=quality,
        candidates=results,
        winner=winner,
        gate=gate,
        registered=registered,
        stored_tag=stored_tag,
        warnings=[issue.message for issue in quality.issues],
    )
