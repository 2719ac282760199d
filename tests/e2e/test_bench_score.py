"""A short ``make bench-score``: both model kinds scored end to end and by the model alone,
figures in the JSON (the targets are judged on the full run, README "Score files offline")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.champions import REPO_ROOT

pytestmark = [pytest.mark.slow]


def test_short_batch_scoring_benchmark(
    tmp_path: Path, isolated_state: Path, text_champion: str
) -> None:
    output = tmp_path / "batch_scoring.json"
    command = [sys.executable, "-m", "benchmarks.batch_scoring", "--home", str(isolated_state)]
    command += ["--tabular-rows", "5000", "--text-rows", "128", "--text-model", text_champion]
    command += ["--output", str(output)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert output.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    results = {(r["kind"], r["format"]): r for r in json.loads(output.read_text())["results"]}
    tabular_runs = [("tabular", "csv"), ("tabular", "parquet"), ("tabular-forest", "csv")]
    assert set(results) == {*tabular_runs, ("text", "tsv")}
    for run in tabular_runs:
        tabular = results[run]
        assert tabular["rows"] == 5000 and tabular["rejected"] == 10, run
        assert set(tabular["stages_alone_s"]) == {
            "read_validate_s",
            "model_s",
            "use_case_s",
            "write_s",
        }
    assert results[("tabular", "csv")]["pandas_script_rows_per_s"] > 0
    assert results[("text", "tsv")]["scored"] == 128
    for result in results.values():
        assert result["raw_rows_per_s"] > 0 and result["ratio"] > 0
