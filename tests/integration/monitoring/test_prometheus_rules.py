"""The Prometheus configuration in deploy/prometheus: promtool accepts the scrape configs and
the rules, and the rules' unit tests (positive and negative cases) pass; every `mlops_*`
family the rules read is one the services define."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import REPO_ROOT
from tests.support.system_tools import require_tool

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"
METRICS_SOURCE = REPO_ROOT / "infrastructure" / "monitoring" / "prometheus_metrics.py"
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def _promtool(*args: str) -> str:
    promtool = require_tool("promtool", "prometheus")
    done = subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_scrape_configs_are_valid(config: str) -> None:
    assert "SUCCESS" in _promtool("check", "config", config)


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    rules = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert "SUCCESS" in _promtool("check", "rules", *rules)
    tests = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests and "SUCCESS" in _promtool("test", "rules", *tests)


def defined_families() -> set[str]:
    return set(re.findall(r'"(mlops_[a-z_]+)"', METRICS_SOURCE.read_text()))


def used_families(text: str) -> set[str]:
    used = set()
    for name in re.findall(r"\b(mlops_[a-z_]+)", text):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in defined_families():
                name = name.removesuffix(suffix)
        used.add(name)
    return used


def test_the_rules_read_only_families_the_services_define() -> None:
    rules = "\n".join(p.read_text() for p in (PROMETHEUS / "rules").glob("*.yml"))
    unknown = used_families(rules) - defined_families()
    assert not unknown, f"rules use families no service defines: {sorted(unknown)}"


def test_the_rules_are_tested_for_every_alert() -> None:
    rules = "\n".join(p.read_text() for p in (PROMETHEUS / "rules").glob("*.yml"))
    tests = "\n".join(p.read_text() for p in (PROMETHEUS / "tests").glob("*.yml"))
    alerts = set(re.findall(r"- alert: (\w+)", rules))
    tested = set(re.findall(r"alertname: (\w+)", tests))
    assert alerts - tested == set(), f"alerts without a promtool test: {sorted(alerts - tested)}"
