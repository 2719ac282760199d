from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmarks import gpu_kit
from benchmarks.champions import REPO_ROOT
from infrastructure.dependencies.lock_constraints import normalize_name


def test_every_kit_package_is_pinned_by_the_lock() -> None:
    # A dependency upgrade that drops one of them must fail here, not on a lent GPU.
    requirements = gpu_kit.locked_versions(gpu_kit.KIT_PACKAGES)
    assert len(requirements) == len(gpu_kit.KIT_PACKAGES)
    assert all("==" in r and r.split("==")[1] for r in requirements)
    assert "bentoml" in {r.split("==")[0] for r in requirements}


def test_the_download_asks_for_binary_wheels_for_the_device_python_only() -> None:
    command = gpu_kit.download_command(["bentoml==1.4.40"], Path("/tmp/w"), "3.12")
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert "--python-version=3.12" in command
    assert command[-1] == "bentoml==1.4.40"


@pytest.mark.parametrize(
    ("wheel", "requirement", "found"),
    [
        ("bentoml-1.4.40-py3-none-any.whl", "bentoml==1.4.40", True),
        (
            "pydantic_core-2.41.5-cp312-cp312-manylinux_2_17_x86_64.whl",
            "pydantic-core==2.41.5",
            True,
        ),
        ("backports.tarfile-1.2.0-py3-none-any.whl", "backports-tarfile==1.2.0", True),
        ("bentoml-1.4.39-py3-none-any.whl", "bentoml==1.4.40", False),
        ("bentoml_extra-1.4.40-py3-none-any.whl", "bentoml==1.4.40", False),
    ],
)
def test_a_requirement_is_matched_to_its_wheel_by_normalized_name_and_version(
    wheel: str, requirement: str, found: bool
) -> None:
    assert gpu_kit._has_wheel([wheel], requirement) is found


def _entry(folder: Path) -> Path:
    """A stored model's folder in miniature: weights, a config, an ONNX export."""
    folder.mkdir(parents=True)
    weights = {"w": torch.randn(8, 4), "ids": torch.arange(4)}
    save_file(weights, str(folder / gpu_kit.WEIGHTS))
    (folder / "config.json").write_text("{}")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"x" * 1000)
    return folder


def test_the_kit_copy_drops_onnx_and_halves_the_weights(tmp_path: Path) -> None:
    entry = _entry(tmp_path / "store" / "m" / "v1")
    gpu_kit.copy_model(entry, tmp_path / "kit" / "m" / "v1")
    copied = tmp_path / "kit" / "m" / "v1"
    assert not (copied / "onnx").exists() and (copied / "config.json").exists()
    tensors = load_file(str(copied / gpu_kit.WEIGHTS))
    assert tensors["w"].dtype == torch.float16
    assert tensors["ids"].dtype == torch.int64  # integers are left as they are


def test_restore_puts_fp32_weights_in_a_store_and_names_the_tag(tmp_path: Path) -> None:
    # Given a kit built from a stored model
    entry = _entry(tmp_path / "store" / "sst2-sentiment" / "v1")
    original = load_file(str(entry / gpu_kit.WEIGHTS))["w"]
    kit = tmp_path / "kit"
    gpu_kit.copy_model(entry, kit / "store" / "sst2-sentiment" / "v1")
    (kit / "manifest.json").write_text(json.dumps({"tag": "sst2-sentiment:v1"}))
    # When it is restored into a fresh home (as on the device)
    home = tmp_path / "home"
    tag = gpu_kit.restore(kit, home)
    # Then the store holds the version, latest points at it, and its weights are fp32
    # within fp16's rounding of the originals
    stored = home / "bentoml" / "models" / "sst2-sentiment"
    assert tag == "sst2-sentiment:v1"
    assert (stored / "latest").read_text() == "v1"
    restored = load_file(str(stored / "v1" / gpu_kit.WEIGHTS))["w"]
    assert restored.dtype == torch.float32
    assert torch.allclose(restored, original, rtol=1e-3, atol=1e-3)


def test_what_the_text_service_imports_is_in_the_kit_or_the_gpu_image() -> None:
    # Given the modules a text worker and the benchmark have once their code is imported:
    # BentoML's worker, the text service and runner modules, the loaders and the
    # classifier (the entrypoint itself builds the service, which needs a stored model;
    # lazy imports inside functions are the README dry run's to catch)
    code = (
        "import json, sys\n"
        "import _bentoml_impl.worker.service, benchmarks.text_serving\n"
        "import infrastructure.serving.text_service, infrastructure.serving.text_runner\n"
        "import infrastructure.serving.loaders, infrastructure.ml.text.classifier\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = gpu_kit.distributions_of(set(json.loads(done.stdout)))
    assert {"bentoml", "pydantic", "torch", "transformers"} <= imported  # it saw them
    # Then every distribution among them travels in the kit or is on the GPU image
    carried = {normalize_name(name) for name in gpu_kit.KIT_PACKAGES}
    project = {normalize_name("bento-mlops")}
    missing = imported - carried - gpu_kit.image_packages() - project
    assert not missing, f"add to KIT_PACKAGES (or the image listing): {sorted(missing)}"
