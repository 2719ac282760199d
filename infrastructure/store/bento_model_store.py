"""The BentoML model store: what services load, labelled with registry version and alias."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import bentoml
import yaml

from domain.models.contract import ServingContract
from domain.ports import Classifier
from shared.errors import ModelNotFoundError

ALIAS_LABEL = "alias"
VERSION_LABEL = "registered_version"
TASK_LABEL = "task"
# A text model's held-out split, next to its weights (read by the int8 accuracy guard).
TEST_SPLIT_FILE = "evaluation/test.jsonl"
MODEL_YAML = "model.yaml"  # BentoML's name for a stored model's info file
# Carried by a model only while it is being copied into the store (see _begin_save).
SAVING_LABEL = "mlops_save"
# A save copies for seconds; an unfinished one this old was left by a killed process.
ABANDONED_AFTER_S = 3600.0

log = logging.getLogger(__name__)


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

    @staticmethod
    def location() -> Path:
        """The folder of the model store BentoML uses now: BENTOML_HOME's, or, in a process
        serving a built Bento (a container), the Bento's own, which BentoML swaps in."""
        from bentoml._internal.configuration.containers import BentoMLContainer

        return Path(BentoMLContainer.model_store.get()._path)

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
            labels=self._begin_save(name, labels),
            metadata=contract.to_metadata(),
            signatures={
                "predict": {"batchable": True, "batch_dim": 0},
                "predict_proba": {"batchable": True, "batch_dim": 0},
            },
        )
        return self._finish_save(name, str(stored.tag), labels)

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
            name,
            labels=self._begin_save(name, labels),
            metadata=contract.to_metadata(),
            module="transformers",
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
        return self._finish_save(name, str(stored.tag), labels)

    def _begin_save(self, name: str, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels to save a new model with, marked as not yet complete.

        BentoML's ``Model.save`` copies the model into its store folder file by file, so a
        process killed mid-save (a CI run saw one) leaves a folder with no model.yaml, or
        with one but not all of the weights. Such a model must never be listed, promoted
        or served: it carries ``SAVING_LABEL`` until ``_finish_save`` removes it, and
        ``_models`` skips it. Abandoned ones are removed before the next save.
        """
        self._remove_abandoned(name)
        return {**labels, SAVING_LABEL: "copying"}

    def _finish_save(self, name: str, tag: str, labels: Mapping[str, str]) -> str:
        stored = bentoml.models.get(tag)
        del stored.info.labels[SAVING_LABEL]
        write_info_atomically(stored)
        alias = labels.get(ALIAS_LABEL)
        if alias:
            self.mark_alias(name, alias, labels.get(VERSION_LABEL))
        return str(stored.tag)

    def _versions(self, name: str) -> list[tuple[Path, Any]]:
        """Each version folder of ``name`` with its model, or None where it is unfinished."""
        folder = self.location() / name
        if not folder.is_dir():
            return []
        found: list[tuple[Path, Any]] = []
        for path in sorted(p for p in folder.iterdir() if p.is_dir()):
            try:
                model: Any = bentoml.models.get(f"{name}:{path.name}")
            # No model.yaml, or a cut one (YAML or attrs errors): the copy was cut short.
            except (
                bentoml.exceptions.BentoMLException,
                yaml.YAMLError,
                ValueError,
                TypeError,
                KeyError,
            ):
                model = None
            if model is not None and SAVING_LABEL in model.info.labels:
                model = None
            found.append((path, model))
        return found

    def _models(self, name: str) -> list[Any]:
        """Complete stored models of ``name`` (``bentoml.models.list`` raises on one that
        a killed save left unfinished, so each version is read on its own)."""
        return [model for _, model in self._versions(name) if model is not None]

    def _remove_abandoned(self, name: str) -> None:
        cutoff = time.time() - ABANDONED_AFTER_S
        for path, model in self._versions(name):
            if model is None and path.stat().st_mtime < cutoff:
                log.warning("removing %s: a save into the store that never finished", path)
                shutil.rmtree(path, ignore_errors=True)

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
