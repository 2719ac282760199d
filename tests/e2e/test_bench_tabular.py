"""A short ``make bench-tabular``: the Bento service and the plain FastAPI server swept end to
end, figures and the tail ratio in the JSON (the targets are judged on the full run, README
"Build a Bento, load-test, benchmark")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.champions import REPO_ROOT

pytestmark = [pytest.mark.slow]


def test_short_tabular_serving_benchmark(tmp_path: Path) -> None:
    output = tmp_path / "tabular_serving.json"
    command = [sys.executable, "-m", "benchmarks.tabular_serving", "--home", str(tmp_path)]
    command += ["--servers", "bentoml,fastapi", "--levels", "1,32"]
    command += ["--requests", "200", "--warmup", "20", "--output", str(output)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert output.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(output.read_text())
    results = {(r["server"], r["clients"]): r for r in report["results"]}
    assert set(results) == {(s, c) for s in ("bentoml", "fastapi") for c in (1, 32)}
    assert all(r["errors"] == 0 and r["rps"] > 0 for r in results.values())
    expected = results[("bentoml", 32)]["p99_ms"] / results[("bentoml", 32)]["p50_ms"]
    assert set(report["bentoml_p99_over_p50"]) == {"32"}
    assert report["bentoml_p99_over_p50"]["32"] == pytest.approx(expected, abs=0.01)
    assert "p99 / p50" in done.stdout
