"""In-memory registry and store doubles for application-layer tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from domain.models.contract import ServingContract
from domain.models.version import ModelVersionInfo
from domain.ports import Classifier
from shared.errors import ModelNotFoundError


class FakeClassifier:
    """Predicts a fixed answer for every row, so accuracy is set by the labels."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.array([self.answer] * len(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.ones((len(features), 1))


class FakeModelRegistry:
    def __init__(self) -> None:
        self.versions: dict[str, dict[str, ModelVersionInfo]] = {}
        self.logged_artifacts: list[tuple[str, str, list[str]]] = []
        self.aliases: dict[str, dict[str, str]] = {}
        self.histories: dict[str, list[str]] = {}
        self.models: dict[tuple[str, str], Classifier] = {}
        self.splits: dict[tuple[str, str], tuple[pd.DataFrame, pd.Series]] = {}
        self.tags: dict[tuple[str, str], dict[str, str]] = {}

    def add(self, name: str, model: Classifier, labels: list[str], threshold: float) -> str:
        version = str(len(self.versions.get(name, {})) + 1)
        self.versions.setdefault(name, {})[version] = ModelVersionInfo(
            name=name,
            version=version,
            run_id=f"run-{version}",
            tags={"gate.metric": "accuracy", "gate.threshold": str(threshold)},
        )
        self.models[(name, version)] = model
        self.splits[(name, version)] = (pd.DataFrame({"x": range(len(labels))}), pd.Series(labels))
        self.set_alias(name, "challenger", version)
        return version

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        try:
            return self.versions[name][version]
        except KeyError as error:
            raise ModelNotFoundError(f"{name} v{version}") from error

    def get_by_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        version = self.aliases.get(name, {}).get(alias)
        return self.versions[name][version] if version else None

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        return list(self.versions.get(name, {}).values())

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases.setdefault(name, {})[alias] = version

    def log_version_artifacts(
        self, name: str, version: str, folder: Path, artifact_path: str
    ) -> str | None:
        self.logged_artifacts.append((name, version, sorted(p.name for p in folder.iterdir())))
        return "fake-run"

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        self.tags.setdefault((name, version), {}).update(tags)
        info = self.versions.get(name, {}).get(version)
        if info is not None:
            self.versions[name][version] = info.model_copy(update={"tags": {**info.tags, **tags}})

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.tags.get((name, version), {}))

    def champion_history(self, name: str) -> list[str]:
        return list(self.histories.get(name, []))

    def set_champion_history(self, name: str, history: Sequence[str]) -> None:
        self.histories[name] = list(history)

    def load_classifier(self, name: str, version: str) -> Classifier:
        return self.models[(name, version)]

    def load_evaluation_split(self, name: str, version: str) -> tuple[pd.DataFrame, pd.Series]:
        return self.splits[(name, version)]


class FakeModelStore:
    def __init__(self) -> None:
        self.labels: dict[str, dict[str, str]] = {}
        self.fail_marking = False

    def save_classifier(
        self, name: str, model: Classifier, labels: Mapping[str, str], contract: ServingContract
    ) -> str:
        version = labels["registered_version"]
        self.labels[version] = dict(labels)
        return f"{name}:{version}"

    def save_text_model(
        self,
        name: str,
        model_dir: Path,
        labels: Mapping[str, str],
        contract: ServingContract,
        test_examples: Sequence[tuple[str, str]] = (),
    ) -> str:
        version = labels["registered_version"]
        self.labels[version] = dict(labels)
        return f"{name}:{version}"

    def find_tag(self, name: str, registry_version: str) -> str | None:
        return f"{name}:{registry_version}" if registry_version in self.labels else None

    def mark_alias(self, name: str, alias: str, registry_version: str | None) -> None:
        if self.fail_marking:
            raise OSError("store is read-only")
        for version, labels in self.labels.items():
            if version == registry_version:
                labels["alias"] = alias
            elif labels.get("alias") == alias:
                labels.pop("alias")

    def list_tags(self, name: str) -> dict[str, str]:
        return {version: f"{name}:{version}" for version in self.labels}


def fake_contract(classes: Sequence[str] = ("a", "b")) -> ServingContract:
    """The smallest valid tabular contract: one numeric feature, uniform class prior."""
    from domain.data.schema import FeatureKind, FeatureSchema, FeatureSpec
    from domain.models.contract import TABULAR_TASK, GateRecord
    from domain.monitoring.profile import ReferenceProfile, profile_numeric

    return ServingContract(
        task=TABULAR_TASK,
        classes=tuple(classes),
        metrics={"accuracy": 1.0},
        reference_profile=ReferenceProfile(
            rows=4,
            numeric={"x": profile_numeric(np.arange(4.0))},
            categorical={},
            class_prior={name: 1 / len(classes) for name in classes},
        ),
        gate=GateRecord(metric="accuracy", threshold=0.5, value=1.0),
        feature_schema=FeatureSchema(
            target="y",
            features=(FeatureSpec(name="x", kind=FeatureKind.NUMERIC, dtype="float64"),),
            classes=tuple(classes),
        ),
    )
