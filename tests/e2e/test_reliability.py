"""Short versions of `make overload`, `make chaos` and `make soak` against a real
`bentoml serve` (the full runs are make targets): each runs end to end, writes its JSON,
and meets its checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.support.system_tools import require_tool

pytestmark = [pytest.mark.slow, pytest.mark.serve]


@pytest.mark.parametrize(
    ("mode", "seconds", "edge"),
    [
        ("overload", "6", False),
        ("overload", "6", True),
        ("chaos", "12", False),
        ("soak", "15", False),
    ],
    ids=["overload", "overload-edge", "chaos", "soak"],
)
def test_short_reliability_run(mode: str, seconds: str, edge: bool, tmp_path: Path) -> None:
    if mode in ("overload", "soak"):
        require_tool("h2load", "nghttp2-client")
    if edge:
        require_tool("haproxy", "haproxy")
    output = tmp_path / f"{mode}.json"
    command = [sys.executable, "-m", "benchmarks.reliability", mode, "--seconds", seconds]
    command += ["--capacity-requests", "800", "--home", str(tmp_path / "home")]
    command += ["--output", str(output), *(["--edge"] if edge else [])]
    if mode == "soak":
        # Capacity measured over 800 requests moves by a third run to run on two shared
        # cores; half of it keeps the short run below what the service sustains.
        command += ["--load-share", "0.5"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads(output.read_text()) if output.exists() else {}
    assert report, done.stdout[-4000:] + done.stderr[-4000:]
    checks = dict(report["checks"])
    if mode == "overload" and not edge:
        # Without the edge the latency targets under 3x load miss: a refusal costs the
        # service's event loop about what an answer costs (README, "Reliability"). The
        # refusals and the recovery must hold; behind the edge, every check.
        checks = {k: v for k, v in checks.items() if "429" in k or "recover" in k or "drained" in k}
        checks.pop("429 answered within 100 ms (p99)")
    if mode == "overload":
        # Recovery in the short run: a CI run (2 cores shared with the generator) shed a
        # few of the first calm requests even after the drain; `make overload` judges zero.
        calm = report["phases"][1]
        checks.pop("recovered: nothing shed or failed at 0.5x")
        assert calm["shed"] + calm["failed"] <= 0.02 * calm["sent"], calm
    if mode == "chaos":
        # Requests in flight on the killed worker fail, and how many depends on the
        # machine (0.9% over `make chaos`'s 30 s here, 5.3% over 12 s in a CI run): the
        # 1% is judged on the full run. What must hold everywhere: nothing fails before
        # the kill or once the replacement serves, and no answer is missing from the log.
        checks.pop("fewer than 1% of requests failed")
    if mode == "soak":
        # 15 s at half a capacity measured over 800 requests: on two cores shared with the
        # generator a CI run shed or failed a few; `make soak` (10 minutes) judges zero.
        first, last, whole = report["phases"]
        checks.pop("0 errors")
        assert whole["shed"] + whole["failed"] <= 0.01 * whole["sent"], whole
        # Its "minutes" are 5 s windows, whose p99 is noise on two shared cores: CI runs
        # went over 1.5x and 3x (56 -> 308 ms) with no error, while runs here on an idle
        # machine stayed within 1.1-1.4x. The short run checks that both windows were
        # measured; `make soak` (minute windows over 10 minutes) judges the 1.5x.
        checks.pop("last-minute p99 within 1.5x the first minute's")
        assert first["ok_p99_ms"] and last["ok_p99_ms"], report["phases"]
        checks["measured"] = True
    assert checks and all(checks.values()), {k: v for k, v in report.items() if k != "phases"}
    assert "PASS" in done.stdout


def test_short_text_runner_kill(text_champion: str, isolated_state: Path, tmp_path: Path) -> None:
    """`make chaos RELIABILITY_ARGS="--kind text --topology split --victim runner"` with two
    runner workers: while the killed one restarts the other scores, so the fronts keep
    answering; nothing fails once the new runner serves and no answer is missing from the log.
    """
    output = tmp_path / "chaos.json"
    command = [sys.executable, "-m", "benchmarks.reliability", "chaos", "--seconds", "12"]
    command += ["--kind", "text", "--topology", "split", "--victim", "runner"]
    command += ["--model", text_champion, "--capacity-requests", "300"]
    command += ["--home", str(isolated_state), "--output", str(output)]
    env = {**os.environ, "MLOPS_TEXT_SERVE_RUNNER_WORKERS": "2"}
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env
    )
    report = json.loads(output.read_text()) if output.exists() else {}
    assert report, done.stdout[-4000:] + done.stderr[-4000:]
    checks = dict(report["checks"])
    # As for the worker kill above: the share failed is judged on the full run.
    checks.pop("fewer than 1% of requests failed")
    assert all(checks.values()), {k: v for k, v in report.items() if k != "phases"}
    assert report["killed"] == "runner" and report["replacement_serving_after_s"] is not None
