"""Offline checks of the Kubernetes manifests (``make k8s-validate``).

Each overlay under ``deploy/k8s/overlays`` is rendered with ``kubectl kustomize``; every
object is validated against the Kubernetes API schema of ``KUBERNETES_VERSION`` with
``kubernetes-validate --strict`` (unknown fields are errors), and against this project's
policy: what a pod of this service needs to run safely in a cluster.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.32.0"
# Custom resources the API schemas do not describe; their fields are checked by policy.
CUSTOM_KINDS = {"ServiceMonitor": "monitoring.coreos.com/v1"}
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


def render(overlay: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not installed (it renders the kustomize overlays)")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    if rendered.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed: {rendered.stderr.strip()}")
    return [obj for obj in yaml.safe_load_all(rendered.stdout) if obj]


def settings_config(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The settings ConfigMap (the edge component adds its haproxy.cfg as another)."""
    [config] = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("bento-mlops-settings")
    ]
    return config


def name_of(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def schema_errors(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    import kubernetes_validate

    if obj.get("kind") in CUSTOM_KINDS:
        expected = CUSTOM_KINDS[obj["kind"]]
        if obj.get("apiVersion") != expected:
            return [f"{name_of(obj)}: apiVersion must be {expected}"]
        return []
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path) or "(top level)"
        return [f"{name_of(obj)}: {where}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name_of(obj)}: no Kubernetes {version} schema for {obj.get('apiVersion')}"]
    return []


def _container_violations(where: str, container: dict[str, Any]) -> Iterator[str]:
    for probe in PROBES:
        if probe not in container:
            yield f"{where}: no {probe}"
    resources = container.get("resources", {})
    for bound in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(bound, {}):
                yield f"{where}: no {resource} in resources.{bound}"
    security = container.get("securityContext", {})
    if security.get("allowPrivilegeEscalation") is not False:
        yield f"{where}: securityContext.allowPrivilegeEscalation must be false"
    if security.get("readOnlyRootFilesystem") is not True:
        yield f"{where}: securityContext.readOnlyRootFilesystem must be true"
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        yield f"{where}: securityContext.capabilities.drop must include ALL"
    gpus = resources.get("limits", {}).get("nvidia.com/gpu")
    if gpus is not None and resources.get("requests", {}).get("nvidia.com/gpu") != gpus:
        yield f"{where}: nvidia.com/gpu requests must equal its limits"


def policy_violations(objects: Iterable[dict[str, Any]]) -> list[str]:
    objects = list(objects)
    found: list[str] = []
    kinds = {obj.get("kind") for obj in objects}
    for needed in ("PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
        if needed not in kinds:
            found.append(f"no {needed}")
    for obj in objects:
        if obj.get("kind") not in WORKLOADS:
            continue
        pod = obj["spec"]["template"]["spec"]
        context = pod.get("securityContext", {})
        if context.get("runAsNonRoot") is not True:
            found.append(f"{name_of(obj)}: pod securityContext.runAsNonRoot must be true")
        if not pod.get("topologySpreadConstraints"):
            found.append(f"{name_of(obj)}: no topologySpreadConstraints")
        gpu = False
        names = {c.get("name") for c in pod.get("containers", [])}
        if "edge" not in names:
            found.append(f"{name_of(obj)}: no edge container (deploy/haproxy) in front")
        for container in pod.get("containers", []):
            where = f"{name_of(obj)} container {container.get('name')}"
            found.extend(_container_violations(where, container))
            gpu = gpu or "nvidia.com/gpu" in container.get("resources", {}).get("limits", {})
            mounted = {m["name"] for m in container.get("volumeMounts", [])}
            read_only = container.get("securityContext", {}).get("readOnlyRootFilesystem")
            if container.get("name") == "service" and read_only and not {"state", "tmp"} <= mounted:
                found.append(f"{where}: a read-only root needs the state and tmp volumes")
        if gpu and not (pod.get("nodeSelector") and pod.get("tolerations")):
            found.append(f"{name_of(obj)}: GPU pods need a nodeSelector and tolerations")
    return found


def check_overlay(overlay: Path) -> list[str]:
    objects = render(overlay)
    problems = [error for obj in objects for error in schema_errors(obj)]
    return problems + policy_violations(objects)


def main(argv: list[str]) -> int:
    overlays = [Path(a) for a in argv] or sorted(Path("deploy/k8s/overlays").iterdir())
    failed = False
    for overlay in overlays:
        problems = check_overlay(overlay)
        failed = failed or bool(problems)
        print(f"{overlay}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            print(f"  - {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
