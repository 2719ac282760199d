"""The smoke text config end to end: MLflow (temp SQLite), BentoML store, validate/promote."""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from application.registry.lifecycle import promote
from application.validation.validate_model import validate_model
from infrastructure.config.job_config import load_text_job
from infrastructure.ml.text.classifier import TransformersTextClassifier
from infrastructure.store.bento_model_store import stored_contract
from tests.conftest import REPO_ROOT
from tests.support.datasets import write_topic_jsonl
from tests.support.serving import container_in

pytestmark = pytest.mark.slow


def test_smoke_config_fine_tunes_registers_stores_and_predicts(tmp_path: Path) -> None:
    container = container_in(tmp_path / "state")
    job = load_text_job(REPO_ROOT / "configs" / "sst2_smoke.yaml")
    messages: list[str] = []
    outcome = container.run_text_training(job, tmp_path / "work", progress=messages.append)

    assert outcome.rows == {"train": 256, "validation": 128, "test": 872}
    assert outcome.fit.steps == 40 and outcome.fit.best_step in (20, 40)
    assert 0 < outcome.fit.trainable_parameters < outcome.fit.total_parameters / 10, "LoRA"
    assert sorted(p.name for p in (tmp_path / "work" / "checkpoints").iterdir()) == [
        "best",
        "last",
    ]
    assert any("val accuracy" in m for m in messages)

    client = MlflowClient(container.settings.tracking_uri)
    run = client.get_run(outcome.run_id)
    assert {"best.accuracy", "train_loss", "val_accuracy", "peak_memory_mb"} <= set(
        run.data.metrics
    )
    assert "behaviour.invariance_pass_rate" in run.data.metrics
    # `mlops models` shows what the registry reads back: the same names as for tabular models.
    listed = container.registry.list_versions("sst2-smoke")[0].metrics
    assert listed["accuracy"] == pytest.approx(outcome.report.accuracy)
    assert listed["macro_f1"] == pytest.approx(outcome.report.macro_f1)
    history = client.get_metric_history(outcome.run_id, "train_loss")
    assert len(history) >= 2, "a loss curve, not a single point"
    artifacts = {a.path for a in client.list_artifacts(outcome.run_id)}
    assert {"confusion_matrix.png", "behaviour_checks.json", "evaluation"} <= artifacts

    stored = bentoml.models.get(outcome.stored_tag)
    assert stored.info.labels["alias"] == "challenger"
    contract = stored_contract(stored)
    assert contract.task == "text-classification" and contract.max_length == 48
    assert contract.classes == ("negative", "positive")
    assert "text_length_chars" in contract.reference_profile.numeric
    loaded = TransformersTextClassifier.load(Path(stored.path), max_length=48)
    probabilities = loaded.predict_proba(["a wonderful , moving film .", "dull and lifeless ."])
    assert probabilities.shape == (2, 2)
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    mixed = ["good .", "a long , slow and ultimately rather pointless film about nothing .", "ok"]
    one_by_one = np.vstack([loaded.predict_proba([text]) for text in mixed])
    # Several passes under a token budget give each text the scores it gets alone, in order.
    assert loaded.predict_proba(mixed, batch_size=64, max_tokens=12) == pytest.approx(
        one_by_one, abs=1e-5
    )
    assert loaded.predict_proba(mixed, batch_size=2) == pytest.approx(one_by_one, abs=1e-5)
    assert loaded.predict_proba([]).shape == (0, 2)

    validation = validate_model(container.registry, "sst2-smoke", alias="challenger")
    assert validation.report.metrics()["accuracy"] == pytest.approx(
        outcome.report.metrics()["accuracy"], abs=1e-9
    )
    result = promote(container.registry, container.store, "sst2-smoke")
    assert result.version == outcome.registered.version
    assert container.store.tag_for_alias("sst2-smoke", "champion") == outcome.stored_tag


def test_training_is_deterministic_on_cpu(tmp_path: Path) -> None:
    from infrastructure.ml.text.trainer import TransformersTextTrainer

    job = load_text_job(REPO_ROOT / "configs" / "sst2_smoke.yaml")
    job = job.model_copy(
        update={"training": job.training.model_copy(update={"max_steps": 4, "eval_every_steps": 4})}
    )
    texts = ["good", "bad", "great fun", "awful mess"] * 8
    labels = [1, 0, 1, 0] * 8
    runs = [
        TransformersTextTrainer().fit(
            job,
            (texts, labels),
            (texts[:8], labels[:8]),
            ["negative", "positive"],
            tmp_path / f"run{i}",
            lambda *_: None,
            lambda _: None,
        )
        for i in range(2)
    ]
    first, second = (run.model.predict_proba(texts[:4]) for run in runs)
    assert (first == second).all()


def test_an_unseen_four_class_dataset_trains_from_a_config_alone(tmp_path: Path) -> None:
    write_topic_jsonl(tmp_path / "topics.jsonl")
    config = tmp_path / "topics.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kind": "text",
                "experiment": "topics",
                "registered_model_name": "news-topics",
                "dataset": {
                    "source": "topics.jsonl",
                    "text_column": "headline",
                    "label_column": "topic",
                },
                "method": "full",
                "max_length": 16,
                "training": {
                    "max_steps": 12,
                    "batch_size": 16,
                    "learning_rate": 5e-4,
                    "eval_every_steps": 6,
                },
                "loss": {"kind": "weighted_ce"},
                "gate": {"metric": "accuracy", "threshold": 0.0},
            }
        )
    )
    container = container_in(tmp_path / "state")
    outcome = container.run_text_training(load_text_job(config), tmp_path / "work")
    assert outcome.rows == {"train": 320, "validation": 40, "test": 40}
    assert outcome.fit.trainable_parameters == outcome.fit.total_parameters, "full fine-tuning"
    stored = bentoml.models.get(outcome.stored_tag)
    assert stored_contract(stored).classes == ("business", "politics", "science", "sports")
    assert outcome.report.metrics()["accuracy"] > 0.5, "keywords make this easy"
