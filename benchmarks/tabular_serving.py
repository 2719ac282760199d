"""Serving benchmark: one registered iris model served three ways on 127.0.0.1.

1. this project's Bento service (`classify`, adaptive batching),
2. `mlflow models serve` of the same registered model version (`/invocations`),
3. a plain FastAPI endpoint predicting one request at a time (benchmarks/plain_fastapi_server.py).

Each gets one worker process and the same closed-loop sweep of single-row JSON requests.
The client runs in this process, on the same machine. Prints a table and writes JSON.

    make bench-tabular            # or: python -m benchmarks.tabular_serving --help
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.champions import REPO_ROOT, champion_tag, ensure_champion, tool, use_stores

MODEL = "iris-classifier"
FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
TARGET_SPEEDUP = 1.5
TARGET_TAIL_RATIO = 2.5  # p99 / p50 of the Bento service at 32 and 64 clients


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32,64", help="client counts")
    parser.add_argument("--requests", type=int, default=3000, help="requests per level (min)")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--home", type=Path, help="MLOPS_HOME to use (default: fresh temp)")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "benchmarks/results/tabular_serving.json"
    )
    parser.add_argument("--servers", default="bentoml,mlflow,fastapi")
    args = parser.parse_args(argv)
    levels = [int(v) for v in args.levels.split(",")]

    home = (args.home or Path(tempfile.mkdtemp(prefix="bench-tabular-"))).resolve()
    use_stores(home)
    os.environ["MLOPS_SERVE_MODEL_NAME"] = MODEL
    ensure_champion(MODEL, "configs/iris.yaml")
    version, tag = champion_tag(MODEL, home)
    print(f"serving {MODEL} v{version} ({tag}) from {home}")

    from sklearn.datasets import load_iris

    from benchmarks.http_load import free_port, print_table, server_process, sweep, write_json

    rows = load_iris().data.round(2).tolist()
    servers: dict[str, dict[str, Any]] = {
        "bentoml": {
            "command": [
                tool("bentoml"),
                "serve",
                "infrastructure.serving.entrypoints.tabular:TabularClassifier",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ],
            "ready": "/readyz",
            "path": "/classify",
            "body": lambda i: json.dumps({"rows": [rows[i % len(rows)]]}).encode(),
        },
        "mlflow": {
            "command": [
                tool("mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{MODEL}/{version}",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                "{port}",
                "-w",
                "1",
            ],
            "ready": "/ping",
            "path": "/invocations",
            "body": lambda i: json.dumps(
                {"dataframe_split": {"columns": FEATURES, "data": [rows[i % len(rows)]]}}
            ).encode(),
        },
        "fastapi": {
            "command": [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.plain_fastapi_server:app",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--workers",
                "1",
                "--log-level",
                "warning",
            ],
            "ready": "/openapi.json",
            "path": "/predict",
            "body": lambda i: json.dumps(
                dict(zip(FEATURES, rows[i % len(rows)], strict=True))
            ).encode(),
            "env": {"MODEL_TAG": tag},
        },
    }
    results = []
    for name in args.servers.split(","):
        spec = servers[name]
        port = free_port()
        command = [part.replace("{port}", str(port)) for part in spec["command"]]
        base = f"http://127.0.0.1:{port}"
        print(f"{name}: {' '.join(command)}", flush=True)
        log = home / f"{name}.log"
        with server_process(command, spec.get("env", {}), base + spec["ready"], log, REPO_ROOT):
            results += sweep(
                name, base + spec["path"], spec["body"], levels, args.requests, args.warmup
            )

    print()
    print_table(results)
    by_key = {(r.server, r.clients): r for r in results}
    speedups = {}
    for clients in levels:
        ours, theirs = by_key.get(("bentoml", clients)), by_key.get(("mlflow", clients))
        if ours and theirs and theirs.rps:
            speedups[str(clients)] = round(ours.rps / theirs.rps, 2)
    print(f"\nbentoml / mlflow throughput: {speedups} (target >= {TARGET_SPEEDUP} at 32 and 64)")
    tails = {
        str(r.clients): round(r.p99_ms / r.p50_ms, 2)
        for r in results
        if r.server == "bentoml" and r.clients in (32, 64) and r.p50_ms
    }
    print(f"bentoml p99 / p50: {tails} (target <= {TARGET_TAIL_RATIO} at 32 and 64)")
    met = (
        all(speedups.get(str(c), 0) >= TARGET_SPEEDUP for c in (32, 64) if c in levels)
        and all(tail <= TARGET_TAIL_RATIO for tail in tails.values())
        and all(r.errors == 0 for r in results)
    )
    write_json(
        args.output,
        {
            "benchmark": "tabular_serving",
            "model": MODEL,
            "version": version,
            "bentoml_tag": tag,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "levels": levels,
            "speedup_vs_mlflow": speedups,
            "bentoml_p99_over_p50": tails,
            "target_met": met,
        },
        results,
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
