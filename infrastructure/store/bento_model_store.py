"""The BentoML model store: what services load, labelled with registry version and alias."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import bentoml

from domain.models.contract import ServingContract
from domain.ports import Classifier
from shared.errors import ModelNotFoundError

ALIAS_LABEL = "alias"
VERSION_LABEL = "registered_version"
TASK_LABEL = "task"
# A text model's held-out split, next to its weights (read by the int8 accuracy guard).
TEST_SPLIT_FILE = "evaluation/test.jsonl"
MODEL_YAML = "model.yaml"  # BentoML's name for a stored model's info file


def stored_contract(model: Any) -> ServingContract:
    """The contract kept with a stored BentoML model (``bentoml.models.get(tag)``)."""
    return ServingContract.from_metadata(
        model.info.metadata, task=model.info.labels.get(TASK_LABEL)
    )


def write_info_atomically(model: Any) -> None:
    """Rewrites a stored model's model.yaml with its changed labels.

    BentoML's ``Model.flush`` rewrites the file in place, so a service reading the store at
    that moment parsed half a file (and BentoML logged the YAML error: seen in a CI run of
    a hot swap). Written next to it and moved over it, the file is always whole.
    """
    folder = Path(model.path)
    staged = folder / f".{MODEL_YAML}.{os.getpid()}.tmp"
    with staged.open("w", encoding="utf8") as stream:
        model.info.dump(stream)
    staged.replace(folder / MODEL_YAML)


class BentoModelStore:
    """Uses the process's BentoML store (``BENTOML_HOME``, set by the composition root)."""

    def save_classifier(
        self,
        name: str,
        model: Classifier,
        labels: Mapping[str, str],
        contract: ServingContract,
    ) -> str:
        stored = bentoml.sklearn.save_model(
            name,
            model,
            labels=dict(labels),
            metadata=contract.to_metadata(),
            signatures={
                "predict": {"batchable": True, "batch_dim": 0},
                "predict_proba": {"batchable": True, "batch_dim": 0},
            },
        )
        alias = labels.get(ALIAS_LABEL)
        if alias:
            self.mark_alias(name, alias, labels.get(VERSION_LABEL))
        return str(stored.tag)

    def save_text_model(
        self,
        name: str,
        model_dir: Path,
        labels: Mapping[str, str],
        contract: ServingContract,
        test_examples: Sequence[tuple[str, str]] = (),
    ) -> str:
        """Weights, config and tokenizer files as they are; services load them from m.path.

        The held-out split goes along (``evaluation/test.jsonl``): a service that quantizes
        the model checks it against these examples before it serves.
        """
        with bentoml.models.create(
            name, labels=dict(labels), metadata=contract.to_metadata(), module="transformers"
        ) as stored:
            shutil.copytree(model_dir, stored.path, dirs_exist_ok=True)
            if test_examples:
                target = Path(stored.path) / TEST_SPLIT_FILE
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(
                    "".join(
                        json.dumps({"text": text, "label": label}) + "\n"
                        for text, label in test_examples
                    )
                )
        alias = labels.get(ALIAS_LABEL)
        if alias:
            self.mark_alias(name, alias, labels.get(VERSION_LABEL))
        return str(stored.tag)

    def _models(self, name: str) -> list[Any]:
        try:
            return list(bentoml.models.list(name))
        except bentoml.exceptions.NotFound:
            return []

    def find_tag(self, name: str, registry_version: str) -> str | None:
        for model in self._models(name):
            if model.info.labels.get(VERSION_LABEL) == str(registry_version):
                return str(model.tag)
        return None

    def list_tags(self, name: str) -> dict[str, str]:
        return {
            model.info.labels[VERSION_LABEL]: str(model.tag)
            for model in self._models(name)
            if VERSION_LABEL in model.info.labels
        }

    def mark_alias(self, name: str, alias: str, registry_version: str | None) -> None:
        models = self._models(name)
        if registry_version is not None and not any(
            m.info.labels.get(VERSION_LABEL) == str(registry_version) for m in models
        ):
            raise ModelNotFoundError(
                "the BentoML store (BENTOML_HOME) "
                f"has no {name} model for registry version {registry_version}"
            )
        for model in models:
            labels = model.info.labels
            is_target = labels.get(VERSION_LABEL) == str(registry_version)
            if is_target and labels.get(ALIAS_LABEL) != alias:
                labels[ALIAS_LABEL] = alias
                write_info_atomically(model)
            elif not is_target and labels.get(ALIAS_LABEL) == alias:
                del labels[ALIAS_LABEL]
                write_info_atomically(model)

    def tag_for_alias(self, name: str, alias: str) -> str | None:
        """Newest stored model of ``name`` carrying ``alias``."""
        matching = [m for m in self._models(name) if m.info.labels.get(ALIAS_LABEL) == alias]
        if not matching:
            return None
        return str(max(matching, key=lambda m: m.info.creation_time).tag)
