"""The local monitoring stack's files: docker-compose.yml is accepted by `docker-compose
config` (no daemon needed), Alertmanager's config by amtool, and the Grafana provisioning
points at dashboards that exist and use the provisioned data source."""

from __future__ import annotations

import json
import subprocess

import yaml

from tests.conftest import REPO_ROOT
from tests.support.system_tools import require_tool

GRAFANA = REPO_ROOT / "deploy" / "grafana"


def _run(*command: str) -> str:
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_compose_file_is_valid_and_has_the_whole_stack() -> None:
    compose = require_tool("docker-compose", "docker-compose")
    _run(compose, "-f", "docker-compose.yml", "config", "-q")
    services = set(_run(compose, "-f", "docker-compose.yml", "config", "--services").split())
    assert services == {
        *("tabular", "tabular-edge", "text", "text-edge"),
        *("redis", "prometheus", "alertmanager", "grafana"),
    }
    for volume in yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"][
        "grafana"
    ]["volumes"]:
        source = volume.split(":")[0]
        assert (REPO_ROOT / source).is_dir(), f"{source} is mounted but missing"


def test_alertmanager_config_is_valid() -> None:
    amtool = require_tool("amtool", "prometheus-alertmanager")
    assert "SUCCESS" in _run(amtool, "check-config", "deploy/alertmanager/alertmanager.yml")


def test_dashboards_use_the_provisioned_data_source() -> None:
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert {d.stem for d in dashboards} == {"mlops-overview", "mlops-slo"}
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["panels"]
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid, f"{path.name}: {panel['title']}"
            assert all(t["expr"] for t in panel["targets"])
