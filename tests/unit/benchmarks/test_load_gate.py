from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.load_gate import main, verdict

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
)


def _stats(folder: Path, requests: int, failures: int, p99: str) -> Path:
    path = folder / "load_stats.csv"
    path.write_text(
        HEADER
        + f"POST,/classify,{requests},{failures},5,6,1,90,40,100,0,5,6,7,8,9,10,12,{p99},80,90,90\n"
        + f",Aggregated,{requests},{failures},5,6,1,90,40,100,0,5,6,7,8,9,10,12,{p99},80,90,90\n"
    )
    return path


def test_a_fast_clean_run_passes(tmp_path: Path) -> None:
    assert main([str(_stats(tmp_path, 1000, 2, "40")), "--max-p99-ms", "100"]) == 0


def test_slow_or_failing_runs_fail_with_the_reason(tmp_path: Path) -> None:
    slow = verdict(_stats(tmp_path, 1000, 0, "700"), max_p99_ms=500, max_error_rate=0.01)
    assert slow.problems == ["p99 700 ms > 500 ms"]
    failing = verdict(_stats(tmp_path, 100, 5, "40"), max_p99_ms=500, max_error_rate=0.01)
    assert failing.problems == ["error rate 5.00% > 1.00%"]
    empty = verdict(_stats(tmp_path, 0, 0, "N/A"), max_p99_ms=500, max_error_rate=0.01)
    assert "no request was made" in empty.problems
    assert main([str(_stats(tmp_path, 100, 5, "40"))]) == 1


def test_a_file_without_the_aggregated_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text(HEADER)
    with pytest.raises(ValueError, match="Aggregated"):
        verdict(path, 500, 0.01)
