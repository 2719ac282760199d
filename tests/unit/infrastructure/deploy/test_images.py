from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infrastructure.deploy.images import REPO, variant_bentofile


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_the_cpu_text_bentofile_pins_the_cpu_torch_wheel(tmp_path: Path) -> None:
    cpu = _load(variant_bentofile("text", "my-sentiment", "cpu", tmp_path))
    committed = _load(REPO / "bentofile.text.yaml")
    [torch] = [p for p in cpu["python"]["packages"] if p.startswith("torch")]
    [pinned] = [p for p in committed["python"]["packages"] if p.startswith("torch==")]
    version = pinned.split("==")[1]
    assert torch == (
        "torch @ https://download.pytorch.org/whl/cpu/"
        f"torch-{version}%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    )
    rest = [p for p in cpu["python"]["packages"] if not p.startswith("torch")]
    assert rest == [p for p in committed["python"]["packages"] if not p.startswith("torch")]


def test_every_image_serves_the_model_its_bento_carries(tmp_path: Path) -> None:
    for kind, variable in (
        ("tabular", "MLOPS_SERVE_MODEL_NAME"),
        ("text", "MLOPS_TEXT_SERVE_MODEL_NAME"),
    ):
        for variant in ("cpu", "cuda"):
            config = _load(variant_bentofile(kind, "my-model", variant, tmp_path))  # type: ignore[arg-type]
            envs = {env["name"]: env["value"] for env in config["envs"]}
            assert envs[variable] == "my-model"
            committed = _load(
                REPO / ("bentofile.yaml" if kind == "tabular" else "bentofile.text.yaml")
            )
            assert {k: v for k, v in config.items() if k not in ("envs", "python")} == {
                k: v for k, v in committed.items() if k not in ("envs", "python")
            }


def test_cuda_text_keeps_pypi_torch(tmp_path: Path) -> None:
    cuda = _load(variant_bentofile("text", "m", "cuda", tmp_path))
    assert any(p.startswith("torch==") for p in cuda["python"]["packages"])
