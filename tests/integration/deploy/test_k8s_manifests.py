"""Every kustomize overlay renders, validates against the Kubernetes API schemas (strict:
unknown fields fail) and passes the project's policy; broken manifests are caught."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from infrastructure.deploy.k8s_checks import check_overlay, render, settings_config
from tests.conftest import REPO_ROOT
from tests.support.system_tools import require_tool

K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir())


@pytest.fixture(autouse=True)
def _kubectl() -> None:
    require_tool("kubectl", "kubectl")


def _deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    return deployment


def _settings(objects: list[dict[str, Any]]) -> dict[str, str]:
    return dict(settings_config(objects)["data"])


def _containers(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    pod = _deployment(objects)["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"]}


def test_the_overlays_are_cpu_gpu_and_canary() -> None:
    assert OVERLAYS == ["canary", "cpu", "gpu"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_validates_and_passes_policy(overlay: str) -> None:
    assert check_overlay(K8S / "overlays" / overlay) == []


def test_cpu_overlay_serves_the_tabular_image_without_gpus() -> None:
    objects = render(K8S / "overlays" / "cpu")
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "ConfigMap",  # the settings
            "ConfigMap",  # the edge's haproxy.cfg
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    )
    containers = _containers(objects)
    assert sorted(containers) == ["edge", "service"]
    container = containers["service"]
    assert container["image"].endswith("/bento-mlops-tabular:latest")
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert _settings(objects)["MLOPS_SERVE_MODEL_NAME"] == "iris-classifier"
    # The generated names carry a content hash, and the Deployment refers to those names.
    config = settings_config(objects)["metadata"]["name"]
    assert container["envFrom"][0]["configMapRef"]["name"] == config != "bento-mlops-settings"


def test_clients_reach_the_service_through_the_edge_sized_for_its_workers() -> None:
    objects = render(K8S / "overlays" / "cpu")
    edge = _containers(objects)["edge"]
    assert edge["image"].startswith("haproxy:")
    [service] = [o for o in objects if o["kind"] == "Service"]
    ports = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
    assert ports == {"http": "edge", "edge-metrics": "edge-metrics"}
    settings = _settings(objects)
    # 2 workers x max_batch_size 64 in flight; the edge reaches the service in its pod.
    assert (settings["MLOPS_SERVE_WORKERS"], settings["EDGE_MAX_CONN"]) == ("2", "128")
    assert settings["SERVICE_ADDR"] == "127.0.0.1:3000"
    [config] = [o for o in objects if o["metadata"]["name"].startswith("bento-mlops-edge")]
    assert "queue(service)" in config["data"]["haproxy.cfg"]
    mounted = {v["name"]: v for v in _deployment(objects)["spec"]["template"]["spec"]["volumes"]}
    assert mounted["edge-config"]["configMap"]["name"] == config["metadata"]["name"]


def test_gpu_overlay_requests_a_gpu_node_and_scales_on_in_flight_requests() -> None:
    objects = render(K8S / "overlays" / "gpu")
    pod = _deployment(objects)["spec"]["template"]["spec"]
    container = _containers(objects)["service"]
    assert container["image"].endswith("/bento-mlops-text-cuda:latest")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] and pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    [hpa] = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "bento_mlops_requests_in_flight"


def test_canary_overlay_splits_traffic_between_variants() -> None:
    settings = _settings(render(K8S / "overlays" / "canary"))
    assert settings["MLOPS_SERVE_CHALLENGER_WEIGHT"] == "10"
    assert settings["MLOPS_SERVE_PREDICTION_LOG_URL"].startswith("redis://")
    assert settings["MLOPS_SERVE_MODEL_NAME"] == "iris-classifier"  # from the cpu overlay


BROKEN = """\
resources:
  - ../cpu
patches:
  - target: {kind: Deployment}
    patch: |-
      - op: remove
        path: /spec/template/spec/containers/0/readinessProbe
      - op: remove
        path: /spec/template/spec/containers/0/resources/limits
      - op: add
        path: /spec/template/spec/containers/0/imagePullPolicyy
        value: Always
      - op: replace
        path: /spec/template/spec/securityContext/runAsNonRoot
        value: false
"""


def test_a_broken_overlay_fails_with_each_problem_named(tmp_path: Path) -> None:
    shutil.copytree(K8S.parent, tmp_path / "deploy")  # the base includes ../../haproxy
    copy = tmp_path / "deploy" / "k8s"
    broken = copy / "overlays" / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text(BROKEN)
    problems = "\n".join(check_overlay(broken))
    assert "imagePullPolicyy" in problems  # strict schema: an unknown field
    assert "no readinessProbe" in problems
    assert "no cpu in resources.limits" in problems and "no memory in resources.limits" in problems
    assert "runAsNonRoot must be true" in problems


def test_a_manifest_that_does_not_render_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(RuntimeError, match="kustomize"):
        render(tmp_path)
