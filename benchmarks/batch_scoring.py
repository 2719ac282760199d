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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.champions import REPO_ROOT, ensure_champion, use_stores

TARGET = 0.9
KINDS = {
    "tabular": ("iris-classifier", "configs/iris.yaml"),
    # The same rows through a model that costs more than reading and writing them.
    "tabular-forest": ("iris-forest", "configs/iris_forest.yaml"),
    "text": ("sst2-sentiment", "configs/sst2_quick.yaml"),
}


def _tabular_file(folder: Path, rows: int, fmt: str = "csv") -> Path:
    """Iris rows with noise and one bad row in 500: in a CSV a field that is not a number,
    in Parquet (which keeps types) a number beyond the service's limit."""
    from infrastructure.ml.dataset_loader import PandasDatasetLoader

    rng = np.random.default_rng(7)
    base = PandasDatasetLoader().load("iris")
    features = [c for c in base.columns if c != "target"]
    sample = base[features].to_numpy()[rng.integers(0, len(base), rows)]
    frame = pd.DataFrame(np.round(sample + rng.normal(0, 0.2, sample.shape), 2), columns=features)
    frame.insert(0, "id", np.arange(rows))
    bad = rng.choice(rows, rows // 500, replace=False)
    path = folder / f"iris_rows.{fmt}"
    if fmt == "parquet":
        frame.loc[bad, features[2]] = 1e300
        frame.to_parquet(path, index=False)
        return path
    text = frame.astype(str)
    text.loc[bad, features[2]] = "n/a"
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
    kind: str,
    model_name: str,
    rows: int,
    chunk_rows: int | None,
    folder: Path,
    fmt: str = "csv",
) -> dict[str, Any]:
    from infrastructure.batch.file_scoring import (
        DEFAULT_CHUNK_ROWS,
        ScoringRequest,
        load_for_scoring,
        resolve_tag,
        score_file,
    )

    tabular = kind.startswith("tabular")
    source = _tabular_file(folder, rows, fmt) if tabular else _text_file(folder, rows)
    chunk = chunk_rows or DEFAULT_CHUNK_ROWS["tabular" if tabular else "text"]
    output = folder / f"{kind}_scored.{source.suffix.lstrip('.')}"
    request = ScoringRequest(model_name, source, output, chunk_rows=chunk, restart=True)
    tag = resolve_tag(request)
    model, validator = load_for_scoring(tag, request)
    stages = _stages(request, tag, model, validator, folder)
    valid_rows = int(stages.pop("valid_rows"))
    del model

    script_rate = _pandas_script_rate(tag, source, folder) if tabular and fmt == "csv" else None
    result = score_file(request)
    progress = result.progress
    raw_rate = valid_rows / stages["model_s"]
    end_to_end = result.scored / progress.seconds
    return {
        "kind": kind,
        "format": source.suffix.lstrip("."),
        "model": tag,
        "rows": result.rows,
        "scored": result.scored,
        "rejected": result.rejected,
        "chunk_rows": chunk,
        "raw_rows_per_s": round(raw_rate, 1),
        "score_rows_per_s": round(end_to_end, 1),
        "score_seconds": round(progress.seconds, 3),
        "model_seconds_in_score": round(progress.model_seconds, 3),
        "stages_alone_s": {k: round(v, 3) for k, v in stages.items()},
        "ratio": round(end_to_end / raw_rate, 3),
        "pandas_script_rows_per_s": round(script_rate, 1) if script_rate else None,
        "ratio_to_pandas_script": round(end_to_end / script_rate, 3) if script_rate else None,
        "target": TARGET,
        "met": end_to_end / raw_rate >= TARGET,
    }


def _stages(request: Any, tag: str, model: Any, validator: Any, folder: Path) -> dict[str, float]:
    """Each step of ``mlops score`` alone, one after another in one thread, over the whole
    file: read and validate, the model alone on the validated inputs (the raw rate), the
    prediction use case around it, and writing the parts. Where the end-to-end time goes."""
    from application.inference.model_pool import ModelPool
    from application.inference.serve_predictions import PredictionService
    from domain.serving.variants import CHAMPION, TrafficSplit
    from infrastructure.batch.file_scoring import input_columns, numeric_columns
    from infrastructure.batch.table_files import (
        ChunkFileSink,
        RunIdentity,
        TableFormat,
        answer_column_names,
        read_chunks,
    )

    fmt = TableFormat.of(request.source, "INPUT")
    chunk = request.chunk_rows
    began = time.perf_counter()
    validated = [
        (c, validator.validate(c))
        for c in read_chunks(request.source, fmt, chunk, numeric_columns(validator))
    ]
    read_s = time.perf_counter() - began
    parts = [v.inputs for _, v in validated]
    model.scorer.predict_proba(parts[0][: min(64, len(parts[0]))])  # first-call costs
    began = time.perf_counter()
    for part in parts:
        model.scorer.predict_proba(part)
    model_s = time.perf_counter() - began
    pool = ModelPool()
    pool.swap(CHAMPION, model)
    with ThreadPoolExecutor(1) as unused:
        service = PredictionService(pool, TrafficSplit(0.0), None, unused, unused, chunk)
        began = time.perf_counter()
        scored = [service.score_batch("batch", part) for part in parts]
        use_case_s = time.perf_counter() - began
    columns = input_columns(request.source, fmt, validator, "INPUT", "--text-column")
    stage_output = folder / f"stages{request.source.suffix}"
    sink = ChunkFileSink(
        stage_output,
        stage_output.with_name("stages.rejects" + request.source.suffix),
        fmt,
        RunIdentity.of(request.source, tag, chunk, fmt),
        columns,
        answer_column_names(model.scorer.classes, validator.extras),
        restart=True,
    )
    began = time.perf_counter()
    for (c, v), batch in zip(validated, scored, strict=True):
        sink.write(c, v, batch, validator.answer_extras(v.inputs))
    sink.finish()
    write_s = time.perf_counter() - began
    return {
        "read_validate_s": read_s,
        "model_s": model_s,
        "use_case_s": use_case_s,
        "write_s": write_s,
        "valid_rows": float(sum(len(p) for p in parts)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="tabular,tabular-forest,text")
    parser.add_argument("--tabular-rows", type=int, default=500_000)
    parser.add_argument("--text-rows", type=int, default=4_096)
    parser.add_argument("--chunk-rows", type=int, help="default: mlops score's own")
    parser.add_argument("--tabular-formats", default="csv,parquet")
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
            rows = args.text_rows if kind == "text" else args.tabular_rows
            formats = {"tabular": args.tabular_formats.split(","), "text": ["tsv"]}.get(
                kind, ["csv"]
            )
            for fmt in formats:
                results.append(measure(kind, model_name, rows, args.chunk_rows, Path(tmp), fmt))
    print(
        f"{'kind':<16}{'file':<9}{'rows':>9}{'rejected':>10}{'raw rows/s':>13}"
        f"{'score rows/s':>14}{'ratio':>8}{'pandas script':>15}   alone: read+validate / model"
        " / use case / write s"
    )
    for r in results:
        alone = r["stages_alone_s"]
        print(
            f"{r['kind']:<16}{r['format']:<9}{r['rows']:>9}{r['rejected']:>10}"
            f"{r['raw_rows_per_s']:>13,.0f}{r['score_rows_per_s']:>14,.0f}{r['ratio']:>8.2f}"
            f"{r['pandas_script_rows_per_s'] or 0:>15,.0f}   {alone['read_validate_s']:.3f}"
            f" / {alone['model_s']:.3f} / {alone['use_case_s']:.3f} / {alone['write_s']:.3f}"
        )
    for r in results:
        verdict = "PASS" if r["met"] else "MISS"
        print(f"[{verdict}] {r['kind']} {r['format']}: >= {TARGET}x the raw model")
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
