"""Text serving benchmark: the sentiment service against its model's own limit, on 127.0.0.1.

All runs use the same stored champion of ``sst2-sentiment`` and real SST-2 sentences (the
GLUE validation and dev sentences, one sentence per request):

a) raw in-process throughput of the model at batch sizes 1, 8, 32 and 64 (and 256 on a
   GPU): the limit, for torch, ONNX Runtime fp32 and int8 side by side (with each one's
   test-split accuracy), each configured as the service's settings configure it, and int8
   also scoring one pass at a time (``ONNX_SIDE_BY_SIDE`` off) for comparison;
   torch's run is repeated after the service's sweep and the two are averaged; each
   judged backend's best batch (torch, and int8 when it runs) is measured again just before
   and just after its service's 64-client level, which its 0.9x target is judged against
   (``RawProbe``);
b) the Bento service (``classify``, adaptive batching) under a closed-loop sweep of
   1/8/32/64/128 clients with a fixed request count per level;
c) an unbatched baseline server: plain FastAPI, one forward pass per request;
d) the Bento service with batching disabled (``MLOPS_TEXT_SERVE_BATCHING=false``);
e) the Bento service with the response cache on and a 0% hit rate (every text new);
f) the Bento service in the split topology (front workers + model runner, as the settings
   default them on this machine) at 64 and 128 clients (``--split-levels``);
g) the Bento service on ONNX Runtime fp32 (64 clients) and int8 (64 and 128 clients).

Each single-topology server has one worker; the client runs in this process on the same
machine. Mean batch sizes come from the service's ``mlops_batch_size`` histogram on
``/metrics``.
Prints a table and writes JSON.

    make bench-text            # or: python -m benchmarks.text_serving --help
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import random
import re
import sys
import time
import urllib.request
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.champions import REPO_ROOT, champion_tag, ensure_champion, tool, use_stores
from benchmarks.http_load import (
    LevelResult,
    free_port,
    print_table,
    run_level,
    server_process,
)

if TYPE_CHECKING:  # torch loads only when a backend is measured
    from infrastructure.ml.text.classifier import CompileMode

MODEL = "sst2-sentiment"
QUICK_CONFIG = "configs/sst2_quick.yaml"
TEXT_SERVICE = "infrastructure.serving.entrypoints.text:TextClassifier"
RAW_BATCH_SIZES = (1, 8, 32, 64)
# On a GPU the model keeps getting faster per text past 64 (the H100 profile: about 9,000
# texts/s at 256 against 6,600 at 64), and the split topology's runner batches 256 there:
# the raw limit is judged on the larger batch too.
GPU_RAW_BATCH_SIZES = (*RAW_BATCH_SIZES, 256)
# One H100, single texts, the best topology and level (0 errors, p99 within 2x the bound).
TARGET_GPU_RPS = 5000
TARGET_RAW_SHARE = 0.90
# The service levels judged against the raw model: it is measured again around them.
JUDGED_LEVELS = frozenset({64})
TARGET_UNBATCHED_SPEEDUP = 3.0
TARGET_CACHE_DROP = 0.05
TARGET_BACKEND_SPEEDUP = 1.5
# Several texts per request leave the event loop little to do per text (GPU target: 32).
TARGET_MULTI_TEXT_SHARE = 0.8
SHUFFLE_SEED = 2013
BATCH_METRIC = re.compile(
    r'^mlops_batch_(size_sum|size_count|seconds_sum)\{[^}]*variant="champion"[^}]*\}\s+(\S+)',
    re.MULTILINE,
)


def load_sentences() -> list[str]:
    """Unique SST-2 texts (GLUE validation sentences and the dev slice), in a fixed shuffle.

    Every run scores the same prefix of this list, so all servers and levels see the same
    length mix (the validation sentences are longer than the dev slice's phrases).
    """
    sentences: dict[str, None] = {}
    for name in ("test.tsv", "dev.tsv"):
        with (REPO_ROOT / "data" / "sst2" / name).open(newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                text = " ".join(row["sentence"].split())
                if text:
                    sentences[text] = None
    shuffled = list(sentences)
    random.Random(SHUFFLE_SEED).shuffle(shuffled)
    return shuffled


# ONNX int8 scored one pass at a time on every thread, as the service did before
# ``ONNX_SIDE_BY_SIDE``: measured raw only, next to the served configuration.
ONE_PASS_INT8 = "onnx-int8-one-pass"
# torch behind ``torch.compile`` (``TORCH_COMPILE``), raw: Inductor kernels everywhere, and
# CUDA graphs on top where a GPU is seen.
COMPILED_TORCH: dict[str, CompileMode] = {
    "torch-compile": "default",
    "torch-compile-cuda-graphs": "reduce-overhead",
}


def _backend_classifier(backend: str, model_path: Path, max_length: int) -> Any:
    """``backend`` as the service's settings (this environment's) configure it."""
    from infrastructure.config.settings import TextServingSettings
    from infrastructure.ml.device import usable_cores
    from infrastructure.ml.text import onnx_backend
    from infrastructure.ml.text.classifier import TransformersTextClassifier
    from infrastructure.serving.text_runner import model_threads, use_model_threads

    # The threads a single-topology service gives its one copy of the model here.
    threads = model_threads(TextServingSettings(), 1, usable_cores(), os.cpu_count())
    settings = use_model_threads(TextServingSettings(), threads)
    if backend == "torch":
        return TransformersTextClassifier.load(model_path, max_length)
    if backend in COMPILED_TORCH:
        eager = TransformersTextClassifier.load(model_path, max_length)
        return eager.compiled(COMPILED_TORCH[backend])
    exported = (
        onnx_backend.export_onnx(model_path)
        if backend == "onnx"
        else onnx_backend.quantize_int8(model_path)
    )
    side_by_side = settings.onnx_side_by_side and backend != ONE_PASS_INT8
    return onnx_backend.OnnxTextClassifier.load(
        model_path, exported, max_length, settings.torch_threads, side_by_side
    )


def raw_throughput(
    model_path: Path, max_length: int, texts: list[str], backends: list[str]
) -> dict[str, Any]:
    """Texts/s of the bare model in this process, tokenization included, per batch size,
    for each backend side by side (``batches`` is torch's).

    Each batch is scored the way the service scores one (same forward-pass size rule).
    """
    from infrastructure.config.settings import TextServingSettings
    from infrastructure.ml.text.held_out import accuracy, stored_test_split
    from infrastructure.serving.loaders import forward_plan

    results: dict[str, Any] = {"backends": {}}
    split = stored_test_split(model_path)
    for backend in backends:
        classifier = _backend_classifier(backend, model_path, max_length)
        plan = forward_plan(TextServingSettings(), classifier)
        entry: dict[str, Any] = {
            "device": classifier.device,
            "forward_max_tokens": plan.max_tokens,
            "passes_side_by_side": classifier.side_by_side,
            "batches": {},
        }
        if split is not None:
            entry["test_accuracy"] = round(accuracy(classifier, *split), 4)
        on_gpu = str(classifier.device).startswith("cuda")
        for size in GPU_RAW_BATCH_SIZES if on_gpu else RAW_BATCH_SIZES:
            classifier.predict_proba(texts[: size * 4], size, plan.max_tokens)  # warm up
            seconds = _scoring_seconds(classifier, texts, size, plan.max_tokens)
            rate = round(len(texts) / seconds, 1)
            entry["batches"][str(size)] = {
                "texts": len(texts),
                "seconds": round(seconds, 3),
                "rps": rate,
            }
            print(f"  raw {backend:<10} batch={size:<4} {rate} texts/s", flush=True)
        print(f"  raw {backend:<10} test accuracy {entry.get('test_accuracy')}", flush=True)
        results["backends"][backend] = entry
        del classifier
    if "torch" in results["backends"]:
        results.update(results["backends"]["torch"])
    gc.collect()
    return results


def _scoring_seconds(classifier: Any, texts: list[str], size: int, max_tokens: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), size):
        classifier.predict_proba(texts[start : start + size], size, max_tokens)
    return time.perf_counter() - started


class RawProbe:
    """A backend's raw rate at one batch size, measurable again at any moment.

    Why: the service's 64-client level was judged against raw runs before and after the
    whole sweep, minutes apart, and this machine's speed moved by up to a fifth between
    them (285 and 232 texts/s around one run; int8's best batch read 989 and 1,453 texts/s
    in two runs). Measured just before and just after the level (the service idle, its
    model loaded), the raw rate sees the machine the level saw.
    """

    def __init__(
        self,
        model_path: Path,
        max_length: int,
        texts: list[str],
        size: int,
        backend: str = "torch",
    ):
        from infrastructure.config.settings import TextServingSettings
        from infrastructure.serving.loaders import forward_plan

        self.size = size
        self.backend = backend
        self._texts = texts
        self._classifier = _backend_classifier(backend, model_path, max_length)
        self._max_tokens = forward_plan(TextServingSettings(), self._classifier).max_tokens
        self._classifier.predict_proba(self._texts[: size * 4], size, self._max_tokens)

    def __call__(self) -> float:
        seconds = _scoring_seconds(self._classifier, self._texts, self.size, self._max_tokens)
        return round(len(self._texts) / seconds, 1)


def bracket(raw: dict[str, Any], after: dict[str, Any]) -> None:
    """Torch's raw rates become the mean of the runs before and after the service's sweep.

    This machine's speed drifts by a third within minutes (raw torch at batch 64 read
    157, 230 and 296 texts/s in three runs within 20 minutes), so one raw run minutes
    before the sweep judged the service partly on the machine's mood; both runs are kept.
    """
    for size, row in raw["backends"]["torch"]["batches"].items():
        again = after["backends"]["torch"]["batches"][size]["rps"]
        row["rps_before"], row["rps_after"] = row["rps"], again
        row["rps"] = round((row["rps"] + again) / 2, 1)


def batch_totals(base: str) -> tuple[float, float, float]:
    """(inputs, batches, seconds in the model) so far, from the champion's
    ``mlops_batch_size`` and ``mlops_batch_seconds`` histograms on ``/metrics``."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as reply:
        text = reply.read().decode()
    totals = {"size_sum": 0.0, "size_count": 0.0, "seconds_sum": 0.0}
    for kind, value in BATCH_METRIC.findall(text):
        totals[kind] += float(value)
    return totals["size_sum"], totals["size_count"], totals["seconds_sum"]


def with_batches(
    result: LevelResult, before: tuple[float, float, float], after: tuple[float, float, float]
) -> LevelResult:
    """``result`` with the level's mean batch and model busy share, from two
    :func:`batch_totals` readings taken around it (unchanged if no batch ran)."""
    batches = after[1] - before[1]
    if not batches:
        return result
    return replace(
        result,
        mean_batch_size=round((after[0] - before[0]) / batches, 2),
        model_busy_share=round((after[2] - before[2]) / result.seconds, 3),
    )


def fetch_json(url: str) -> Any:
    request = urllib.request.Request(url, data=b"{}", headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def run_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    path: str,
    ready: str,
    levels: list[int],
    requests: int,
    warmup: int,
    sentences: list[str],
    home: Path,
    per_request: int = 1,
    probe: RawProbe | None = None,
    probe_levels: frozenset[int] = frozenset(),
) -> tuple[list[LevelResult], dict[str, Any]]:
    """Sweep ``levels``; every level sends the same texts, in the same order. Around each of
    ``probe_levels``, ``probe`` measures the raw model just before and just after it
    (``extra["raw_around"]``).

    Warm-up requests take texts from the end of the list, so with ``requests + warmup``
    below the list's length a cache never sees a text twice (with one text per request;
    with several, the list wraps around).
    """
    if per_request == 1 and requests + warmup > len(sentences):
        raise SystemExit(f"requests + warmup must stay below {len(sentences)} unique texts")
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    base = f"http://127.0.0.1:{port}"
    print(f"{name}: {' '.join(command)}", flush=True)

    def bodies(start: int) -> Any:
        count = len(sentences)
        return lambda i: json.dumps(
            {
                "texts": [
                    sentences[(start + i * per_request + k) % count] for k in range(per_request)
                ]
            }
        ).encode()

    results = []
    extra: dict[str, Any] = {}
    with server_process(command, env, base + ready, home / f"{name}.log", REPO_ROOT):
        run_level(name, base + path, bodies(len(sentences) - warmup), max(levels), warmup)
        batching = "metrics" if name != "unbatched-fastapi" else None
        for clients in levels:
            probed = probe if clients in probe_levels else None
            raw_before = probed() if probed else 0.0
            before = batch_totals(base) if batching else (0.0, 0.0, 0.0)
            result = run_level(name, base + path, bodies(0), clients, requests)
            if batching:
                result = with_batches(result, before, batch_totals(base))
            if probed:
                raw_after = probed()
                extra.setdefault("raw_around", {})[str(clients)] = {
                    "batch": probed.size,
                    "rps_before": raw_before,
                    "rps_after": raw_after,
                    "rps": round((raw_before + raw_after) / 2, 1),
                }
                print(
                    f"  raw {probed.backend} around it: {raw_before} / {raw_after} texts/s",
                    flush=True,
                )
            print(
                f"  {name:<18} clients={clients:<4} rps={result.rps:<8} p50={result.p50_ms}ms "
                f"p99={result.p99_ms}ms errors={result.errors} shed={result.shed} "
                f"batch={result.mean_batch_size} busy={result.model_busy_share}",
                flush=True,
            )
            results.append(result)
        if batching:
            variants = fetch_json(base + "/stats")["variants"]
            stats = next(v["stats"] for v in variants if v["variant"] == "champion")
            extra["cache_hits"], extra["cache_misses"] = stats["cache_hits"], stats["cache_misses"]
            extra["warmup"] = fetch_json(base + "/metadata")["warmup"]
    return results, extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32,64,128", help="client counts, service")
    parser.add_argument("--baseline-levels", default="1,8,64", help="unbatched / batching off")
    parser.add_argument(
        "--split-levels", default="64,128", help="client counts, split topology (front + runner)"
    )
    parser.add_argument("--requests", type=int, default=2560, help="requests per level")
    parser.add_argument("--warmup", type=int, default=256, help="requests before the sweep")
    parser.add_argument(
        "--texts-per-request", type=int, default=1, help="texts in each request's body"
    )
    parser.add_argument("--home", type=Path, help="MLOPS_HOME (default: $MLOPS_HOME or ./.mlops)")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "benchmarks/results/text_serving.json"
    )
    parser.add_argument(
        "--runs", default="raw,service,unbatched,nobatch,cache,split,compile,onnx,int8"
    )
    parser.add_argument(
        "--raw-texts", type=int, default=1024, help="texts per raw-model measurement"
    )
    parser.add_argument(
        "--model-tag",
        help="serve this BentoML model tag as is (no MLflow lookup, no training)",
    )
    args = parser.parse_args(argv)
    levels = [int(v) for v in args.levels.split(",")]
    baseline_levels = [int(v) for v in args.baseline_levels.split(",")]
    runs = set(args.runs.split(","))

    home = (args.home or Path(os.environ.get("MLOPS_HOME", REPO_ROOT / ".mlops"))).resolve()
    use_stores(home)
    if args.model_tag:
        tag = args.model_tag
        version = tag.partition(":")[2]
    else:
        ensure_champion(MODEL, QUICK_CONFIG)
        version, tag = champion_tag(MODEL, home)

    import bentoml

    from infrastructure.store.bento_model_store import stored_contract

    stored = bentoml.models.get(tag)
    model_path = Path(stored.path)
    max_length = stored_contract(stored).max_length or 0
    sentences = load_sentences()
    print(f"serving {MODEL} v{version} ({tag}), max_length {max_length}, from {home}")
    print(f"{len(sentences)} unique SST-2 sentences, one per request", flush=True)

    from infrastructure.config.settings import TextServingSettings

    # The servers inherit this environment, so they run with these settings too.
    max_latency_ms = TextServingSettings().max_latency_ms
    service_env = {"MLOPS_TEXT_SERVE_MODEL_TAG": tag}
    bentoml_command = [
        tool("bentoml"),
        "serve",
        TEXT_SERVICE,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]
    servers: dict[str, dict[str, Any]] = {
        "service": {
            "name": "bentoml-batched",
            "command": bentoml_command,
            "env": service_env,
            "levels": levels,
        },
        "unbatched": {
            "name": "unbatched-fastapi",
            "command": [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.plain_text_server:app",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--log-level",
                "warning",
            ],
            "env": {"MODEL_PATH": str(model_path), "MAX_LENGTH": str(max_length)},
            "levels": baseline_levels,
            "ready": "/openapi.json",
        },
        "nobatch": {
            "name": "bentoml-no-batch",
            "command": bentoml_command,
            "env": {**service_env, "MLOPS_TEXT_SERVE_BATCHING": "false"},
            "levels": baseline_levels,
        },
        "cache": {
            "name": "bentoml-cache-0%",
            "command": bentoml_command,
            "env": {**service_env, "MLOPS_TEXT_SERVE_CACHE": "true"},
            "levels": [64],
        },
        "compile": {
            "name": "bentoml-torch-compile",
            "command": bentoml_command,
            "env": {**service_env, "MLOPS_TEXT_SERVE_TORCH_COMPILE": "default"},
            "levels": [64],
        },
        "onnx": {
            "name": "bentoml-onnx",
            "command": bentoml_command,
            "env": {**service_env, "MLOPS_TEXT_SERVE_BACKEND": "onnx"},
            "levels": [64],
        },
        "split": {
            "name": "bentoml-split",
            "command": bentoml_command,
            "env": {**service_env, "MLOPS_TEXT_SERVE_TOPOLOGY": "split"},
            "levels": [int(v) for v in args.split_levels.split(",")],
        },
        "int8": {
            "name": "bentoml-onnx-int8",
            "command": bentoml_command,
            "env": {**service_env, "MLOPS_TEXT_SERVE_BACKEND": "onnx-int8"},
            "levels": [64, 128],
        },
    }

    onnx_runs = bool(runs & {"onnx", "int8"})
    # The one-pass int8 row only when the served int8 is not that configuration already.
    backends = ["torch"] + (["onnx", "onnx-int8"] if onnx_runs else [])
    if "compile" in runs:
        import torch

        backends.append("torch-compile")
        if torch.cuda.is_available():
            backends.append("torch-compile-cuda-graphs")
    if onnx_runs and TextServingSettings().onnx_side_by_side:
        backends.append(ONE_PASS_INT8)
    raw_texts = sentences[: args.raw_texts]
    raw = raw_throughput(model_path, max_length, raw_texts, backends) if "raw" in runs else None
    results: list[LevelResult] = []
    extras: dict[str, Any] = {}
    for key in ("service", "unbatched", "nobatch", "cache", "split", "compile", "onnx", "int8"):
        if key not in runs:
            continue
        spec = servers[key]
        probe = None
        backend = {"service": "torch", "compile": "torch-compile", "int8": "onnx-int8"}.get(key)
        if raw and backend is not None and backend in raw["backends"]:
            batches = raw["backends"][backend]["batches"]
            best = max(batches, key=lambda size: batches[size]["rps"])
            probe = RawProbe(model_path, max_length, raw_texts, int(best), backend)
        found, extra = run_server(
            spec["name"],
            spec["command"],
            spec["env"],
            "/classify",
            spec.get("ready", "/readyz"),
            spec["levels"],
            args.requests,
            args.warmup,
            sentences,
            home,
            args.texts_per_request,
            probe,
            JUDGED_LEVELS,
        )
        del probe
        results += found
        extras[spec["name"]] = extra
        if key == "service" and raw:
            bracket(raw, raw_throughput(model_path, max_length, raw_texts, ["torch"]))

    print()
    if raw:
        print(
            f"raw model on {raw['device']}: "
            + ", ".join(
                f"batch {size}: {row['rps']} texts/s" for size, row in raw["batches"].items()
            )
        )
    print_table(results)
    checks = evaluate(results, raw, extras, max_latency_ms, args.texts_per_request)
    for check in checks:
        mark = "PASS" if check["met"] else "MISS"
        print(f"[{mark}] {check['name']}: {check['value']} (target {check['target']})")
    context = explain(results, raw)
    for name, value in context.items():
        print(f"[info] {name}: {value}")
    write_report(args.output, tag, version, raw, results, extras, checks, context, max_latency_ms)
    return 0 if all(check["met"] for check in checks) else 1


def _raw_best(
    extras: dict[str, Any], server: str, raw: dict[str, Any], sweep: str
) -> tuple[float, str]:
    """The raw rate a server's 64-client level is judged against, and where it comes from:
    measured around the level when it was (``RawProbe``), else the sweep's best batch
    (``sweep`` says which runs those were); the sweep's figures stay in the report."""
    around = extras.get(server, {}).get("raw_around", {}).get("64")
    if around:
        return float(around["rps"]), "measured around the level"
    return max(float(row["rps"]) for row in raw["batches"].values()), sweep


def _check(name: str, value: Any, target: str, met: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "target": target, "met": met}


def evaluate(
    results: list[LevelResult],
    raw: dict[str, Any] | None,
    extras: dict[str, Any],
    max_latency_ms: int,
    per_request: int = 1,
) -> list[dict[str, Any]]:
    by_key = {(r.server, r.clients): r for r in results}
    checks: list[dict[str, Any]] = []
    ours = by_key.get(("bentoml-batched", 64))
    if ours and raw:
        best, where = _raw_best(extras, "bentoml-batched", raw, "before and after the sweep")
        share = round(ours.rps * per_request / best, 3)
        target = TARGET_RAW_SHARE if per_request == 1 else TARGET_MULTI_TEXT_SHARE
        checks.append(
            _check(
                f"service@64 texts/s ({per_request} per request) / raw best batch ({where})",
                share,
                f">= {target}",
                share >= target,
            )
        )
    int8 = by_key.get(("bentoml-onnx-int8", 64))
    if ours and int8:
        speedup = round(int8.rps / ours.rps, 2)
        checks.append(
            _check(
                "int8 service@64 / torch service@64",
                speedup,
                f">= {TARGET_BACKEND_SPEEDUP}",
                speedup >= TARGET_BACKEND_SPEEDUP,
            )
        )
        int8_raw = (raw or {}).get("backends", {}).get("onnx-int8")
        if int8_raw:
            best, where = _raw_best(extras, "bentoml-onnx-int8", int8_raw, "from the sweep")
            share = round(int8.rps / best, 3)
            checks.append(
                _check(
                    f"int8 service@64 / int8 raw best batch ({where})",
                    share,
                    f">= {TARGET_RAW_SHARE}",
                    share >= TARGET_RAW_SHARE,
                )
            )
    unbatched = by_key.get(("unbatched-fastapi", 64))
    if ours and unbatched and unbatched.rps:
        speedup = round(ours.rps / unbatched.rps, 2)
        target = TARGET_UNBATCHED_SPEEDUP
        checks.append(
            _check("service@64 / unbatched@64", speedup, f">= {target}", speedup >= target)
        )
    cached = by_key.get(("bentoml-cache-0%", 64))
    if ours and cached:
        drop = round(1 - cached.rps / ours.rps, 3)
        hits = extras.get("bentoml-cache-0%", {}).get("cache_hits")
        checks.append(
            _check(
                "cache on, 0% hits: throughput drop",
                drop,
                f"< {TARGET_CACHE_DROP} with 0 hits (hits: {hits})",
                drop < TARGET_CACHE_DROP and hits == 0,
            )
        )
    if raw and str(raw.get("device", "")).startswith("cuda") and per_request == 1:
        served = [
            r
            for r in results
            if r.server in ("bentoml-batched", "bentoml-split")
            and r.errors == 0
            and r.p99_ms <= 2 * max_latency_ms
        ]
        best_rps = max((r.rps for r in served), default=0.0)
        checks.append(
            _check(
                "GPU: single-text rps (best topology and level with 0 errors and p99 <= "
                f"{2 * max_latency_ms} ms)",
                best_rps,
                f">= {TARGET_GPU_RPS}",
                best_rps >= TARGET_GPU_RPS,
            )
        )
    # Shed requests (429 with Retry-After) are the overload contract, not errors.
    below = [
        r
        for r in results
        if r.server in ("bentoml-batched", "bentoml-onnx-int8") and r.clients <= 128
    ]
    if below:
        errors = sum(r.errors for r in below)
        checks.append(_check("service errors at <= 128 clients", errors, "0", errors == 0))
        worst = max(r.p99_ms for r in below)
        limit = 2 * max_latency_ms
        checks.append(
            _check("service p99 at <= 128 clients (ms)", worst, f"<= {limit}", worst <= limit)
        )
    return checks


def explain(results: list[LevelResult], raw: dict[str, Any] | None) -> dict[str, float]:
    """Ratios that say why a target is met or missed; reported, not checked.

    With 64 closed-loop clients and one batch in flight, the batcher's batches hold about
    half the clients (the other half is waiting for answers), so the service's fair limit is
    the raw rate at the batch size it formed; and threads make the unbatched server slower
    at 64 clients than serially, so its best level is the honest baseline.
    """
    by_key = {(r.server, r.clients): r for r in results}
    ours = by_key.get(("bentoml-batched", 64))
    found: dict[str, float] = {}
    if ours is None:
        return found
    if raw and ours.mean_batch_size:
        sizes = [int(size) for size in raw["batches"]]
        nearest = min(sizes, key=lambda size: abs(size - float(ours.mean_batch_size or 0)))
        rate = raw["batches"][str(nearest)]["rps"]
        found[f"service@64 / raw batch {nearest} (its mean batch {ours.mean_batch_size})"] = round(
            ours.rps / rate, 3
        )
    unbatched = [r.rps for r in results if r.server == "unbatched-fastapi" and r.rps]
    if unbatched:
        found["service@64 / best unbatched level"] = round(ours.rps / max(unbatched), 2)
    compiled = by_key.get(("bentoml-torch-compile", 64))
    if compiled and ours.rps:
        found["torch-compile service@64 / torch service@64"] = round(compiled.rps / ours.rps, 3)
    backends = (raw or {}).get("backends", {})
    for name in COMPILED_TORCH:
        if name in backends and "torch" in backends:
            rate, eager = backends[name]["batches"], backends["torch"]["batches"]
            best = max(eager, key=lambda size: eager[size]["rps"])
            found[f"raw {name} / raw torch at batch {best}"] = round(
                rate[best]["rps"] / eager[best]["rps"], 3
            )
    for clients in (64, 128):
        single, split = (
            by_key.get(("bentoml-batched", clients)),
            by_key.get(("bentoml-split", clients)),
        )
        if single and split and single.rps:
            found[f"split topology@{clients} / single@{clients}"] = round(split.rps / single.rps, 2)
    return found


def write_report(
    path: Path,
    tag: str,
    version: str,
    raw: dict[str, Any] | None,
    results: list[LevelResult],
    extras: dict[str, Any],
    checks: list[dict[str, Any]],
    context: dict[str, float],
    max_latency_ms: int,
) -> None:
    from infrastructure.ml.device import describe_device

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "text_serving",
        "model": MODEL,
        "version": version,
        "bentoml_tag": tag,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "device": describe_device(),
        },
        "max_latency_ms": max_latency_ms,
        "raw": raw,
        "results": [asdict(r) for r in results],
        "servers": extras,
        "checks": checks,
        "context": context,
        "targets_met": all(check["met"] for check in checks),
    }
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
