"""A short ``make bench-overhead``: the floor, the shipped service and the synthetic-GPU
model, each started for real and loaded by a few clients; figures land in the JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmarks.champions import REPO_ROOT
from tests.support.benchmarks import stored_model_benchmark

pytestmark = [pytest.mark.slow, pytest.mark.serve]


def test_short_overhead_benchmark_reports_cpu_per_request(
    tmp_path: Path, isolated_state: Path, text_champion: str
) -> None:
    output = tmp_path / "overhead.json"
    runs = "bare-starlette,service,synthetic-gpu,synthetic-gpu-split"
    command = stored_model_benchmark("serving_overhead", isolated_state, text_champion)
    # The kernel counts CPU time in 10 ms ticks: on a fast machine the floor's 300 requests
    # read zero in one level of ten, so each level spans several ticks.
    command += ["--runs", runs, "--clients", "8", "--requests", "2000"]
    command += ["--warmup", "40", "--rounds", "2", "--output", str(output)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads(output.read_text())
    results = {r["name"]: r for r in report["results"]}
    assert set(results) == set(runs.split(","))
    for result in results.values():
        assert result["load"]["errors"] == 0, result
        assert result["server_cpu_us_per_request"] > 0
    assert results["service"]["load"]["mean_batch_size"] >= 1.0
    judged = report["targets"]["service_cpu_vs_floor"]
    assert judged["ratio"] > 0 and len(judged["rounds"]) == 2
    assert all(pair["floor_us"] > 0 and pair["ratio"] > 0 for pair in judged["rounds"])
    assert report["synthetic_gpu_raw_texts_per_s"]["64"] > 0
    assert report["targets"]["synthetic_gpu_split_vs_single_rps"] > 0
    assert "x floor" in done.stdout
