"""Offline scoring (`mlops score`) against the raw batched throughput of the same model.

For each model kind: a file is written (tabular: iris rows with noise and a few bad rows per
thousand, CSV; text: SST-2 training sentences, TSV), scored end to end by ``score_file``
(read, validate, score, write the parts, join them), and compared with the model alone
scoring the already-validated inputs in chunks of the same size, both measured in this run
on this machine. Target: at least 0.9x the raw rate (issue 17). Model loading is left out
of both.

    make bench-score            # or: python -m benchmarks.batch_scoring --help
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.champions import REPO_ROOT, ensure_champion, use_stores

TARGET = 0.9
KINDS = {
    "tabular": ("iris-classifier", "configs/iris.yaml"),
    "text": ("sst2-sentiment", "configs/sst2_quick.yaml"),
}


def _tabular_file(folder: Path, rows: int) -> Path:
    from infrastructure.ml.dataset_loader import PandasDatasetLoader

    rng = np.random.default_rng(7)
    base = PandasDatasetLoader().load("iris")
    features = [c for c in base.columns if c != "target"]
    sample = base[features].to_numpy()[rng.integers(0, len(base), rows)]
    frame = pd.DataFrame(np.round(sample + rng.normal(0, 0.2, sample.shape), 2), columns=features)
    frame.insert(0, "id", np.arange(rows))
    text = frame.astype(str)
    bad = rng.choice(rows, rows // 500, replace=False)
    text.loc[bad, features[2]] = "n/a"
    path = folder / "iris_rows.csv"
    text.to_csv(path, index=False)
    return path


def _text_file(folder: Path, rows: int) -> Path:
    frame = pd.read_csv(REPO_ROOT / "data" / "sst2" / "train.tsv", sep="\t", quoting=3)
    frame = frame.rename(columns={"sentence": "text"}).head(rows)
    path = folder / "sentences.tsv"
    frame.to_csv(path, sep="\t", index=False)
    return path


def _pandas_script_rate(tag: str, source: Path, folder: Path) -> float:
    """What a hand-written script does with the same model: read the CSV with pandas,
    coerce, predict_proba, write the probabilities next to the input (no validation,
    no rejects, no resume): rows per second, model loading left out."""
    import bentoml

    from infrastructure.store.bento_model_store import stored_contract

    stored = bentoml.models.get(tag)
    schema = stored_contract(stored).feature_schema
    assert schema is not None
    pipeline = bentoml.sklearn.load_model(stored)
    began = time.perf_counter()
    frame = pd.read_csv(source)
    features = frame[schema.names].apply(pd.to_numeric, errors="coerce")
    probabilities = pipeline.predict_proba(features)
    for index, name in enumerate(pipeline.classes_):
        frame[f"probability_{name}"] = probabilities[:, index]
    frame.to_csv(folder / "pandas_script.csv", index=False)
    return len(frame) / (time.perf_counter() - began)


def measure(
    kind: str, model_name: str, rows: int, chunk_rows: int | None, folder: Path
) -> dict[str, Any]:
    from infrastructure.batch.file_scoring import (
        DEFAULT_CHUNK_ROWS,
        ScoringRequest,
        load_for_scoring,
        resolve_tag,
        score_file,
    )
    from infrastructure.batch.table_files import TableFormat, read_chunks

    source = _tabular_file(folder, rows) if kind == "tabular" else _text_file(folder, rows)
    chunk = chunk_rows or DEFAULT_CHUNK_ROWS[kind]
    request = ScoringRequest(
        model_name, source, folder / f"{kind}_scored.csv", chunk_rows=chunk, restart=True
    )
    tag = resolve_tag(request)

    # Raw: the model alone on the validated inputs, chunk by chunk (validation not timed).
    model, validator = load_for_scoring(tag, request)
    fmt = TableFormat.of(source, "INPUT")
    numeric = getattr(validator, "numeric", [])
    inputs = [validator.validate(c).inputs for c in read_chunks(source, fmt, chunk, numeric)]
    model.scorer.predict_proba(inputs[0][: min(64, len(inputs[0]))])  # first-call costs
    began = time.perf_counter()
    for part in inputs:
        model.scorer.predict_proba(part)
    raw_s = time.perf_counter() - began
    valid_rows = sum(len(p) for p in inputs)
    del model

    script_rate = _pandas_script_rate(tag, source, folder) if kind == "tabular" else None
    result = score_file(request)
    progress = result.progress
    raw_rate = valid_rows / raw_s
    end_to_end = result.scored / progress.seconds
    return {
        "kind": kind,
        "model": tag,
        "rows": result.rows,
        "scored": result.scored,
        "rejected": result.rejected,
        "chunk_rows": chunk,
        "raw_rows_per_s": round(raw_rate, 1),
        "score_rows_per_s": round(end_to_end, 1),
        "score_seconds": round(progress.seconds, 2),
        "model_seconds_in_score": round(progress.model_seconds, 2),
        "ratio": round(end_to_end / raw_rate, 3),
        "pandas_script_rows_per_s": round(script_rate, 1) if script_rate else None,
        "ratio_to_pandas_script": round(end_to_end / script_rate, 3) if script_rate else None,
        "target": TARGET,
        "met": end_to_end / raw_rate >= TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="tabular,text")
    parser.add_argument("--tabular-rows", type=int, default=500_000)
    parser.add_argument("--text-rows", type=int, default=4_096)
    parser.add_argument("--chunk-rows", type=int, help="default: mlops score's own")
    parser.add_argument(
        "--text-model", help="a text model already in the store (default: train sst2-sentiment)"
    )
    parser.add_argument("--home", type=Path, help="MLOPS_HOME (default: $MLOPS_HOME or ./.mlops)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    home = (args.home or Path(os.environ.get("MLOPS_HOME", REPO_ROOT / ".mlops"))).resolve()
    use_stores(home)
    output = args.output or REPO_ROOT / "benchmarks/results/batch_scoring.json"
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        for kind in args.kinds.split(","):
            model_name, config = KINDS[kind]
            if kind == "text" and args.text_model:
                model_name = args.text_model
            else:
                ensure_champion(model_name, config)
            rows = args.tabular_rows if kind == "tabular" else args.text_rows
            results.append(measure(kind, model_name, rows, args.chunk_rows, Path(tmp)))
    print(
        f"{'kind':<9}{'rows':>9}{'rejected':>10}{'raw rows/s':>13}{'score rows/s':>14}{'ratio':>8}"
    )
    for r in results:
        print(
            f"{r['kind']:<9}{r['rows']:>9}{r['rejected']:>10}{r['raw_rows_per_s']:>13,.0f}"
            f"{r['score_rows_per_s']:>14,.0f}{r['ratio']:>8.2f}"
            f"{r['pandas_script_rows_per_s'] or 0:>22,.0f}"
        )
    for r in results:
        print(f"[{'PASS' if r['met'] else 'MISS'}] {r['kind']}: >= {TARGET}x the raw model")
    payload = {
        "benchmark": "batch_scoring",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": sys.version.split()[0],
        "results": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2))
    print(f"wrote {output}")
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
