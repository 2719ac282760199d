"""Train-and-promote a model into the session store, then build its service for to_asgi()."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bentoml
import yaml
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from application.registry.lifecycle import promote
from domain.security.api_keys import Role
from infrastructure.bootstrap import Container, bootstrap
from infrastructure.config.job_config import load_tabular_job, load_text_job
from infrastructure.config.settings import MlopsSettings, ServingSettings, TextServingSettings
from infrastructure.security.json_key_store import JsonKeyStore
from infrastructure.serving.tabular_service import build_tabular_service
from infrastructure.serving.text_service import build_text_service
from tests.conftest import REPO_ROOT

FAST_CANDIDATES = [{"estimator": "logistic_regression", "params": {"C": 1.0}}]


def container_in(home: Path) -> Container:
    return bootstrap(MlopsSettings(home=home, bentoml_home=Path(os.environ["BENTOML_HOME"])))


def write_iris_config(home: Path, name: str, **overrides: Any) -> Path:
    """configs/iris.yaml as ``name`` with one fast candidate, changed by ``overrides``."""
    config: dict[str, Any] = yaml.safe_load((REPO_ROOT / "configs" / "iris.yaml").read_text())
    config.update(registered_model_name=name, candidates=FAST_CANDIDATES)
    config.update(overrides)
    home.mkdir(parents=True, exist_ok=True)
    path = home / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_and_promote(home: Path, name: str, **overrides: Any) -> Container:
    """Train configs/iris.yaml (or ``overrides``) as ``name`` and make it the champion."""
    path = write_iris_config(home, name, **overrides)
    container = container_in(home)
    container.run_tabular_training(load_tabular_job(path))
    promote(container.registry, container.store, name)
    return container


def train_and_promote_text(home: Path, name: str) -> Container:
    """Fine-tune configs/sst2_smoke.yaml (40 LoRA steps) as ``name``; make it the champion."""
    source = REPO_ROOT / "configs" / "sst2_smoke.yaml"
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    config["registered_model_name"] = name
    for split in ("train", "validation", "test"):
        config["dataset"][split] = str((source.parent / config["dataset"][split]).resolve())
    home.mkdir(parents=True, exist_ok=True)
    path = home / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    container = container_in(home)
    container.run_text_training(load_text_job(path), home / "work")
    promote(container.registry, container.store, name)
    return container


# The admin key of each in-process service (by id of the service object), which
# asgi_client sends with every request unless told not to.
ADMIN_KEYS: dict[int, str] = {}


def own_state(settings: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Each in-process service gets its own prediction log (the shared one under MLOPS_HOME
    would carry counts and labels from earlier tests of the same model into this one's
    stats) and its own key file with one admin key; returns the settings and that key."""
    folder = Path(tempfile.mkdtemp(prefix="mlops-state-"))
    keys = folder / "api_keys.json"
    _, token = JsonKeyStore(keys).create("tests", Role.ADMIN)
    return {
        "prediction_log_url": f"sqlite:///{folder / 'predictions.db'}",
        "api_keys_file": str(keys),
        **settings,
    }, token


def tabular_service(**settings: Any) -> Any:
    values, token = own_state(settings)
    blueprint = build_tabular_service(ServingSettings(**values))
    service = blueprint.attach(bentoml.service(**blueprint.config)(blueprint.cls))
    ADMIN_KEYS[id(service)] = token
    return service


def text_service(**settings: Any) -> Any:
    values, token = own_state(settings)
    blueprint = build_text_service(TextServingSettings(**values))
    service = blueprint.attach(bentoml.service(**blueprint.config)(blueprint.cls))
    ADMIN_KEYS[id(service)] = token
    return service


def metric_total(client: TestClient, family: str, **labels: str) -> float:
    """Sum of a family's samples whose labels include ``labels``."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if not line.startswith(family + "{"):
            continue
        sample_labels, value = line[len(family) + 1 :].rsplit("} ", 1)
        if all(f'{k}="{v}"' in sample_labels for k, v in labels.items()):
            total += float(value)
    return total


def wait_ready(client: TestClient, timeout_s: float = 180.0) -> None:
    """Until /readyz answers 200: versions load (and text models warm) in a thread."""
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "service not ready in time"
        time.sleep(0.05)


@contextmanager
def asgi_client(service: Any, wait: bool = True, admin: bool = True) -> Iterator[TestClient]:
    """TestClient over ``service.to_asgi()``, ready unless ``wait`` is False; several may run,
    one after another, per process. With ``admin`` it sends the service's admin key.

    Each BentoML app registers its own ``bentoml_service_*`` collectors in the global
    Prometheus registry and a second app would collide with the first, so they are dropped
    when the client closes (our ``mlops_*`` families are shared on purpose and stay).
    """
    try:
        with TestClient(service.to_asgi()) as client:
            if admin and id(service) in ADMIN_KEYS:
                client.headers["Authorization"] = f"Bearer {ADMIN_KEYS[id(service)]}"
            if wait:
                wait_ready(client)
            yield client
    finally:
        collectors = dict(REGISTRY._collector_to_names)  # no public way to list them
        for collector, names in collectors.items():
            if any(name.startswith("bentoml_") for name in names):
                REGISTRY.unregister(collector)


def variant_stats(client: TestClient, variant: str = "champion") -> dict[str, Any]:
    """One variant's part of `stats` (the service reports each variant separately)."""
    variants = client.post("/stats").json()["variants"]
    stats: dict[str, Any] = next(v["stats"] for v in variants if v["variant"] == variant)
    return stats


def batch_totals(client: TestClient, model: str, variant: str = "champion") -> tuple[float, float]:
    """(inputs, model calls) so far for one model, from the `mlops_batch_size` histogram."""
    return (
        metric_total(client, "mlops_batch_size_sum", model=model, variant=variant),
        metric_total(client, "mlops_batch_size_count", model=model, variant=variant),
    )
