"""Container images of the services: ``bentoml build`` of a bentofile, then
``bentoml containerize --backend podman``, tagged with the model's registry version and
labelled with the model, its version and the git commit (``make containerize``,
``make containerize-text``).

The text service has two variants. ``cuda`` installs PyPI's torch, whose Linux wheels are
CUDA builds with the CUDA libraries as pip packages (the GPU driver comes from the node's
NVIDIA container runtime). ``cpu`` pins the CPU-only wheel by URL instead, so the image
never pulls the multi-GB CUDA packages; a direct URL leaves no index to choose from.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import yaml

Kind = Literal["tabular", "text"]
Variant = Literal["cpu", "cuda"]

REPO = Path(__file__).resolve().parents[2]
BENTOFILES: dict[Kind, str] = {"tabular": "bentofile.yaml", "text": "bentofile.text.yaml"}
MODEL_ENV: dict[Kind, str] = {
    "tabular": "MLOPS_SERVE_MODEL_NAME",
    "text": "MLOPS_TEXT_SERVE_MODEL_NAME",
}
CONTAINERS_CONF = REPO / "deploy" / "podman" / "containers.conf"
CPU_TORCH = (
    "torch @ https://download.pytorch.org/whl/cpu/"
    "torch-{version}%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl"
)
LABEL_PREFIX = "io.bento-mlops"


@dataclass(frozen=True)
class BuiltImage:
    image: str
    bento_tag: str
    model_name: str
    model_version: str
    model_tag: str
    git_sha: str
    build_s: float
    size_bytes: int


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def _run(command: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:3])} failed ({done.returncode}):\n{done.stdout[-4000:]}"
            f"\n{done.stderr[-4000:]}"
        )
    return done.stdout


def _bentoml() -> str:
    found = shutil.which("bentoml", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("bentoml is not installed in this environment (make install)")
    return found


def variant_bentofile(kind: Kind, model: str, variant: Variant, folder: Path) -> Path:
    """The committed bentofile with the served model's name as an image environment
    variable (a container must serve the model its Bento carries, whatever the default),
    and for (text, cpu) torch pinned to the CPU wheel."""
    config = yaml.safe_load((REPO / BENTOFILES[kind]).read_text())
    config["envs"] = [
        *[env for env in config.get("envs", []) if env["name"] != MODEL_ENV[kind]],
        {"name": MODEL_ENV[kind], "value": model},
    ]
    if kind == "text" and variant == "cpu":
        config["python"]["packages"] = [
            CPU_TORCH.format(version=p.split("==", 1)[1]) if p.startswith("torch==") else p
            for p in config["python"]["packages"]
        ]
    target = folder / f"bentofile.{kind}.{variant}.yaml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def git_sha() -> str:
    try:
        return _run(["git", "rev-parse", "HEAD"]).strip()
    except (RuntimeError, OSError):
        return "unknown"


def build_image(kind: Kind, model: str, variant: Variant = "cpu") -> BuiltImage:
    import bentoml

    env = {**podman_env(), MODEL_ENV[kind]: model}
    with tempfile.TemporaryDirectory(prefix="bentofile-") as folder:
        bentofile = variant_bentofile(kind, model, variant, Path(folder))
        output = _run([_bentoml(), "build", "-f", str(bentofile), "--output", "tag"], env)
    bento_tag = output.strip().splitlines()[-1].removeprefix("__tag__:")
    bento = bentoml.get(bento_tag)
    [stored] = [m for service in bento.info.services for m in service.models]
    model_tag = str(stored.tag)
    version = bentoml.models.get(model_tag).info.labels.get("registered_version", "unknown")
    suffix = "" if kind == "tabular" else f"-{variant}"
    image = f"bento-mlops-{kind}{suffix}:v{version}"
    sha = git_sha()
    labels = {
        f"{LABEL_PREFIX}.model.name": model,
        f"{LABEL_PREFIX}.model.version": version,
        f"{LABEL_PREFIX}.model.tag": model_tag,
        f"{LABEL_PREFIX}.bento": bento_tag,
        f"{LABEL_PREFIX}.variant": variant,
        "org.opencontainers.image.revision": sha,
        "org.opencontainers.image.source": "https://github.com/bento-mlops/bento-mlops",
    }
    options = [arg for key, value in labels.items() for arg in ("--opt", f"label={key}={value}")]
    started = time.perf_counter()
    _run(
        [_bentoml(), "containerize", "--backend", "podman", bento_tag, "-t", image, *options],
        env,
    )
    build_s = time.perf_counter() - started
    inspected = json.loads(_run(["podman", "image", "inspect", image], env))[0]
    return BuiltImage(
        image=image,
        bento_tag=bento_tag,
        model_name=model,
        model_version=version,
        model_tag=model_tag,
        git_sha=sha,
        build_s=round(build_s, 1),
        size_bytes=int(inspected["Size"]),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a service image with podman.")
    parser.add_argument("kind", choices=["tabular", "text"])
    parser.add_argument("--model", required=True, help="registered model name (its champion)")
    parser.add_argument("--variant", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    built = build_image(args.kind, args.model, args.variant)
    print(json.dumps(asdict(built), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
