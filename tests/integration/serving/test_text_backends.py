"""The text service on ONNX Runtime: exported on first load into the stored model's folder,
the same answers as torch in fp32, and int8 only behind its accuracy guard."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import bentoml
import numpy as np
import pytest

from benchmarks.champions import REPO_ROOT
from infrastructure.config.settings import TextServingSettings
from infrastructure.ml.text.classifier import TransformersTextClassifier
from infrastructure.ml.text.onnx_backend import (
    FP32_FILE,
    INT8_FILE,
    ONNX_FOLDER,
    SIDE_BY_SIDE_FORWARD_TOKENS,
    OnnxTextClassifier,
    export_onnx,
)
from infrastructure.serving.loaders import TransformersModelLoader, check_accuracy_guard
from infrastructure.store.bento_model_store import TEST_SPLIT_FILE
from shared.errors import BackendRefusedError
from tests.support.serving import asgi_client, text_service

pytestmark = pytest.mark.slow

TEXTS = ["a gorgeous , witty , seductive movie .", "dull , lifeless and far too long ."]


def _folder(name: str) -> Path:
    return Path(bentoml.models.get(f"{name}:latest").path)


def test_onnx_fp32_answers_as_torch_does_and_is_stored_with_the_model(text_champion: str) -> None:
    folder = _folder(text_champion)
    assert (folder / TEST_SPLIT_FILE).exists(), "the held-out split is registered with it"
    with asgi_client(text_service(model_name=text_champion, backend="onnx")) as client:
        reply = client.post("/classify", json={"texts": TEXTS})
        assert reply.status_code == 200, reply.text
        served = np.array(
            [[p["probabilities"][c] for c in ("negative", "positive")] for p in reply.json()]
        )
        assert client.post("/metadata").json()["backend"]["name"] == "onnx"
    assert (folder / ONNX_FOLDER / FP32_FILE).exists(), "exported into the BentoML store"
    reference = TransformersTextClassifier.load(folder, max_length=48, device="cpu")
    assert np.allclose(served, reference.predict_proba(TEXTS), atol=1e-4)


def test_passes_side_by_side_score_what_one_pass_at_a_time_scores(text_champion: str) -> None:
    folder = _folder(text_champion)
    exported = export_onnx(folder)
    alone = OnnxTextClassifier.load(folder, exported, max_length=48, threads=2)
    both = OnnxTextClassifier.load(folder, exported, 48, threads=2, side_by_side=True)
    assert (alone.side_by_side, both.side_by_side) == (1, 2)
    assert both.session.get_session_options().intra_op_num_threads == 1
    assert both.forward_tokens == SIDE_BY_SIDE_FORWARD_TOKENS
    # Mixed lengths and a small budget: many passes, so both threads get several.
    texts = [" ".join(TEXTS[i % 2].split()[: 2 + i % 7]) for i in range(40)]
    assert np.allclose(
        both.predict_proba(texts, 64, max_tokens=48), alone.predict_proba(texts, 64, 48), atol=1e-5
    )


def test_int8_is_served_with_its_guard_figures(text_champion: str) -> None:
    # The 40-step smoke model is not the point here: a wide limit keeps this test about
    # serving int8 with its figures; the limit itself is tested below.
    service = text_service(
        model_name=text_champion, backend="onnx-int8", int8_max_accuracy_drop=0.2
    )
    with asgi_client(service) as client:
        reply = client.post("/classify", json={"texts": TEXTS})
        assert reply.status_code == 200, reply.text
        backend = client.post("/metadata").json()["backend"]
    assert backend["name"] == "onnx-int8"
    assert backend["passes_side_by_side"] == len(os.sched_getaffinity(0)), "one per core"
    assert backend["accuracy"]["examples"] == 872
    assert backend["accuracy"]["fp32"] - backend["accuracy"]["int8"] <= 0.2
    assert (_folder(text_champion) / ONNX_FOLDER / INT8_FILE).exists()


def test_int8_without_a_stored_test_split_is_refused_by_name(
    text_champion: str, tmp_path: Path
) -> None:
    stored = bentoml.models.get(f"{text_champion}:latest")
    split = Path(stored.path) / TEST_SPLIT_FILE
    kept = tmp_path / "test.jsonl"
    shutil.move(split, kept)
    try:
        loader = TransformersModelLoader(TextServingSettings(backend="onnx-int8"))
        with pytest.raises(BackendRefusedError, match="held-out split"):
            loader.load(str(stored.tag))
    finally:
        shutil.move(kept, split)


def test_the_int8_guard_refuses_more_than_its_limit() -> None:
    guard = "INT8_MAX_ACCURACY_DROP"
    check_accuracy_guard("m:1", "int8", fp32=0.80, reduced=0.795, max_drop=0.01, setting=guard)
    with pytest.raises(BackendRefusedError, match=r"1\.50 points below fp32 \(0\.8000\)"):
        check_accuracy_guard("m:1", "int8", fp32=0.80, reduced=0.785, max_drop=0.01, setting=guard)


def test_reduced_precision_on_a_cpu_is_refused_by_name(text_champion: str) -> None:
    stored = bentoml.models.get(f"{text_champion}:latest")
    loader = TransformersModelLoader(TextServingSettings(precision="fp16", device="cpu"))
    with pytest.raises(BackendRefusedError, match="PRECISION=fp16 applies to CUDA"):
        loader.load(str(stored.tag))


def test_torch_compile_answers_as_eager_torch_and_is_named(text_champion: str) -> None:
    service = text_service(model_name=text_champion, torch_compile="default")
    with asgi_client(service) as client:
        reply = client.post("/classify", json={"texts": TEXTS})
        assert reply.status_code == 200, reply.text
        # One text alone: the pass shape the warm-up compiles apart.
        alone = client.post("/classify", json={"texts": TEXTS[:1]})
        assert alone.status_code == 200, alone.text
        backend = client.post("/metadata").json()["backend"]
    assert (backend["name"], backend["compiled"]) == ("torch", "default")
    served = np.array(
        [[p["probabilities"][c] for c in ("negative", "positive")] for p in reply.json()]
    )
    reference = TransformersTextClassifier.load(_folder(text_champion), max_length=48, device="cpu")
    assert np.allclose(served, reference.predict_proba(TEXTS), atol=1e-5)
    first = reply.json()[0]["probabilities"]
    assert alone.json()[0]["probabilities"] == pytest.approx(first, abs=1e-5)


def test_a_failed_compile_refuses_the_load_by_name(text_champion: str, tmp_path: Path) -> None:
    # Inductor builds its kernels with the C++ compiler in CXX; with none that works and an
    # empty kernel cache, the compile fails in the warm-up, in a process of its own.
    stored = bentoml.models.get(f"{text_champion}:latest")
    script = (
        "from infrastructure.config.settings import TextServingSettings\n"
        "from infrastructure.serving.loaders import TransformersModelLoader\n"
        "from shared.errors import BackendRefusedError\n"
        "settings = TextServingSettings(torch_compile='default', device='cpu')\n"
        "try:\n"
        f"    TransformersModelLoader(settings).load({str(stored.tag)!r})\n"
        "except BackendRefusedError as error:\n"
        "    print('refused:', error)\n"
    )
    env = {
        **os.environ,
        "CXX": str(tmp_path / "no-such-compiler"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refused:" in done.stdout and "TORCH_COMPILE=default failed in the warm-up" in (
        done.stdout
    ), done.stdout[-2000:]
    assert "set it to off to serve eagerly" in done.stdout


def test_cuda_graphs_on_a_cpu_are_refused_by_name(text_champion: str) -> None:
    stored = bentoml.models.get(f"{text_champion}:latest")
    settings = TextServingSettings(torch_compile="reduce-overhead", device="cpu")
    with pytest.raises(BackendRefusedError, match="TORCH_COMPILE=reduce-overhead records CUDA"):
        TransformersModelLoader(settings).load(str(stored.tag))
