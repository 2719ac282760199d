"""Gate a deployment on a short load test: read Locust's ``--csv`` stats and fail (exit 1)
when the aggregated p99 latency or the error rate is above its bound.

    locust ... --headless --csv load   # writes load_stats.csv
    python -m benchmarks.load_gate load_stats.csv --max-p99-ms 500 --max-error-rate 0.01
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class LoadVerdict:
    requests: int
    failures: int
    error_rate: float
    p99_ms: float
    max_p99_ms: float
    max_error_rate: float

    @property
    def problems(self) -> list[str]:
        found = []
        if self.requests == 0:
            found.append("no request was made")
        if self.p99_ms > self.max_p99_ms:
            found.append(f"p99 {self.p99_ms:.0f} ms > {self.max_p99_ms:.0f} ms")
        if self.error_rate > self.max_error_rate:
            found.append(f"error rate {self.error_rate:.2%} > {self.max_error_rate:.2%}")
        return found


def verdict(stats_csv: Path, max_p99_ms: float, max_error_rate: float) -> LoadVerdict:
    with stats_csv.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    if not rows:
        raise ValueError(f"{stats_csv}: no Aggregated row (is it Locust's *_stats.csv?)")
    row = rows[0]
    requests = int(row["Request Count"])
    failures = int(row["Failure Count"])
    p99 = row["99%"]
    return LoadVerdict(
        requests=requests,
        failures=failures,
        error_rate=failures / requests if requests else 1.0,
        p99_ms=float(p99) if p99 not in ("", "N/A") else float("inf"),
        max_p99_ms=max_p99_ms,
        max_error_rate=max_error_rate,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("stats_csv", type=Path)
    parser.add_argument("--max-p99-ms", type=float, default=500.0)
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    args = parser.parse_args(argv)
    result = verdict(args.stats_csv, args.max_p99_ms, args.max_error_rate)
    print(json.dumps({**asdict(result), "problems": result.problems}, indent=2))
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
