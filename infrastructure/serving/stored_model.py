"""Which stored model a service serves, and what it knows about it from the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bentoml

from domain.models.contract import ServingContract
from infrastructure.config.settings import ServingSettings
from infrastructure.store.bento_model_store import (
    ALIAS_LABEL,
    VERSION_LABEL,
    BentoModelStore,
    stored_contract,
)
from shared.errors import ModelNotFoundError


@dataclass(frozen=True)
class ServedModel:
    tag: str
    name: str
    version: str
    alias: str
    labels: dict[str, str]
    contract: ServingContract

    def describe(self) -> dict[str, Any]:
        contract = self.contract
        return {
            "model_name": self.name,
            "model_version": self.version,
            "alias": self.alias,
            "bentoml_tag": self.tag,
            "mlflow_run_id": self.labels.get("mlflow_run_id"),
            "task": contract.task,
            "metrics": contract.metrics,
            "estimator": contract.estimator,
            "gate": contract.gate.model_dump(),
            "dataset_fingerprint": (
                contract.dataset_fingerprint.model_dump() if contract.dataset_fingerprint else None
            ),
        }


def resolve_served_model(settings: ServingSettings) -> ServedModel:
    """The exact tag if one is set, else the newest stored model carrying the alias."""
    tag = settings.model_tag or BentoModelStore().tag_for_alias(
        settings.model_name, settings.model_alias
    )
    # The store BentoML reads: BENTOML_HOME's, or a built Bento's own in a container.
    store_path = BentoModelStore.location()
    if tag is None:
        raise ModelNotFoundError(
            f"no {settings.model_name!r} model with alias {settings.model_alias!r} in the "
            f"BentoML store at {store_path}: train and promote one (`make demo`), or set "
            "MLOPS_SERVE_MODEL_TAG / MLOPS_SERVE_MODEL_ALIAS"
        )
    try:
        stored = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        raise ModelNotFoundError(
            f"model {tag!r} is not in the BentoML store at {store_path}"
        ) from None
    labels = dict(stored.info.labels)
    return ServedModel(
        tag=str(stored.tag),
        name=labels.get("registered_model", stored.tag.name),
        version=labels.get(VERSION_LABEL, stored.tag.version or ""),
        alias=labels.get(ALIAS_LABEL, ""),
        labels=labels,
        contract=stored_contract(stored),
    )
