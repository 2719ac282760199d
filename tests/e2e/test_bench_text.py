"""A short ``make bench-text``: the raw models, the torch service, the compiled torch service
and the int8 service, each started for real; each judged level is bracketed by its own
backend's raw probe."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from benchmarks.champions import REPO_ROOT
from tests.support.benchmarks import stored_model_benchmark

pytestmark = [pytest.mark.slow, pytest.mark.serve]


def test_short_text_benchmark_judges_each_backend_around_its_level(
    tmp_path: Path, isolated_state: Path, text_champion: str
) -> None:
    output = tmp_path / "text.json"
    command = stored_model_benchmark("text_serving", isolated_state, text_champion)
    command += ["--runs", "raw,service,compile,int8", "--levels", "64"]
    command += ["--requests", "192", "--warmup", "32", "--raw-texts", "128"]
    command += ["--output", str(output)]
    # The smoke model (40 LoRA steps) loses more than a point to int8; the guard's own
    # refusal is tested with the backends, this run only needs the service to start.
    env = {**os.environ, "MLOPS_TEXT_SERVE_INT8_MAX_ACCURACY_DROP": "0.5"}
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=env
    )
    # Exit 1 is a missed target (a smoke model, a few requests); the report says which.
    assert done.returncode in (0, 1) and output.exists(), done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads(output.read_text())
    levels = {(r["server"], r["clients"]): r for r in report["results"]}
    assert {
        ("bentoml-batched", 64),
        ("bentoml-torch-compile", 64),
        ("bentoml-onnx-int8", 64),
    } <= set(levels)
    assert all(level["errors"] == 0 for level in levels.values()), levels
    backends = report["raw"]["backends"]
    assert set(backends) == {"torch", "torch-compile", "onnx", "onnx-int8", "onnx-int8-one-pass"}
    compiled, eager = backends["torch-compile"], backends["torch"]
    assert abs(compiled["test_accuracy"] - eager["test_accuracy"]) <= 0.002, (compiled, eager)
    assert "raw torch-compile / raw torch at batch" in " ".join(report["context"])
    assert report["context"]["torch-compile service@64 / torch service@64"] > 0
    cores = len(os.sched_getaffinity(0))
    assert backends["onnx-int8"]["passes_side_by_side"] == cores, "as the service scores"
    assert backends["onnx-int8-one-pass"]["passes_side_by_side"] == 1
    for server, backend in (("bentoml-batched", "torch"), ("bentoml-onnx-int8", "onnx-int8")):
        around = report["servers"][server]["raw_around"]["64"]
        assert around["rps_before"] > 0 and around["rps_after"] > 0, around
        assert f"raw {backend} around it" in done.stdout
    judged = [c["name"] for c in report["checks"] if "measured around the level" in c["name"]]
    assert len(judged) == 2, report["checks"]
