"""The kit a lent GPU machine needs to run the text benchmarks: wheels and one stored model.

The device tool's GPU machines reach no registry and hold an image with torch,
transformers, tokenizers, onnxruntime and numpy (KINDS.md of the device tool) but not
BentoML, pydantic, uvicorn and the rest of the serving stack. What travels with the
working tree is capped at 64 MiB, and device time at 15 minutes a session, so everything
is prepared here and checked on this machine first (``tests/unit/benchmarks/test_gpu_kit.py``
and the README's dry run):

    python -m benchmarks.gpu_kit build            # -> .gpu/ (wheels, model, manifest)
    # on the device, from the repository root:  bash benchmarks/gpu_check.sh

``build`` downloads, at their ``poetry.lock`` versions, the wheels of ``KIT_PACKAGES``
for the device's Python (3.12) and copies the text champion's BentoML store entry with its
weights cast to fp16 (87 MB of fp32 weights would not fit; the ONNX files are left out,
the GPU runs torch). ``restore`` (run on the device by ``gpu_check.sh``) puts the entry
into a BentoML store with fp32 weights again: the fp16 copy rounds each weight once, and
fp32 serving then reads the same numbers on both machines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.champions import REPO_ROOT, champion_tag, ensure_champion, use_stores
from benchmarks.text_serving import MODEL, QUICK_CONFIG
from infrastructure.dependencies.lock_constraints import normalize_name, read_lock, version_of

KIT = REPO_ROOT / ".gpu"
DEVICE_PYTHON = "3.12"
# What travels: the working tree and the kit together (the device tool's limit).
CARRY_LIMIT_BYTES = 64 * 1024 * 1024
WEIGHTS = "model.safetensors"
# Left behind: the GPU runs torch, and onnx/ is re-exported on first use if ever asked for.
LEFT_OUT = ("onnx",)
# The distributions the text benchmark and `bentoml serve` of the text service (single and
# split topologies) import, less those the GPU image already has. Found by tracing the
# modules of every process of `benchmarks.text_serving --model-tag TAG --runs
# raw,service,split` (a sitecustomize that writes `sys.modules` out) and mapping them to
# distributions, against the image's package list of 2026-11-17. Some come in through
# namespace packages (google-auth, backports-*): small, so kept rather than risk a miss.
KIT_PACKAGES = (
    "a2wsgi",
    "annotated-types",
    "asgiref",
    "backports-tarfile",
    "backports-zstd",
    "bentoml",
    "brotli",
    "cattrs",
    "click-option-group",
    "google-auth",
    "httpcore2",
    "httptools",
    "httpx-ws",
    "httpx2",
    "kantoku",
    "opentelemetry-api",
    "opentelemetry-instrumentation",
    "opentelemetry-instrumentation-aiohttp-client",
    "opentelemetry-instrumentation-asgi",
    "opentelemetry-proto",
    "opentelemetry-sdk",
    "opentelemetry-semantic-conventions",
    "opentelemetry-util-http",
    "outcome",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "python-multipart",
    "pyzmq",
    "schema",
    "simple-di",
    "sniffio",
    "starlette",
    "tornado",
    "trio",
    "truststore",
    "typing-inspection",
    "uvicorn",
    "watchfiles",
    "wsproto",
)


IMAGE_PACKAGES = REPO_ROOT / "benchmarks" / "reference" / "gpu_image_packages.txt"


def image_packages(listing: Path = IMAGE_PACKAGES) -> set[str]:
    """The GPU image's distributions (normalized names), from the committed listing."""
    lines = listing.read_text().splitlines()
    return {normalize_name(line) for line in lines if line.strip() and not line.startswith("#")}


def distributions_of(modules: set[str]) -> set[str]:
    """The installed distributions (normalized names) that provide these top-level modules."""
    import importlib.metadata

    provided = importlib.metadata.packages_distributions()
    return {normalize_name(dist) for module in modules for dist in provided.get(module, ())}


def locked_versions(names: tuple[str, ...], lock: Path = REPO_ROOT / "poetry.lock") -> list[str]:
    """``name==version`` for each of ``names``, as ``poetry.lock`` pins it."""
    packages = read_lock(lock)
    return [f"{name}=={version_of(packages, name)}" for name in names]


def download_command(
    requirements: list[str], folder: Path, python_version: str = DEVICE_PYTHON
) -> list[str]:
    """pip, fetching binary wheels for CPython ``python_version`` on x86-64 Linux, no deps
    (the set is complete by construction, and a resolver would pull what the image has)."""
    platforms = [
        f"--platform={tag}"
        for tag in (
            "manylinux_2_28_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux2014_x86_64",
            "manylinux_2_5_x86_64",
            "manylinux1_x86_64",
            "linux_x86_64",
        )
    ]
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        f"--python-version={python_version}",
        "--implementation=cp",
        *platforms,
        "--dest",
        str(folder),
        *requirements,
    ]


def cast_weights(source: Path, target: Path, dtype: str) -> None:
    """The safetensors file at ``source`` with its floating-point tensors cast to ``dtype``
    (``float16`` or ``float32``), written to ``target``."""
    import torch
    from safetensors.torch import load_file, save_file

    wanted = getattr(torch, dtype)
    tensors = load_file(str(source))
    cast = {
        name: tensor.to(wanted) if tensor.is_floating_point() else tensor
        for name, tensor in tensors.items()
    }
    save_file(cast, str(target), metadata={"format": "pt"})


def copy_model(entry: Path, target: Path) -> None:
    """The store entry at ``entry`` (one model version's folder) to ``target``, without
    ``LEFT_OUT`` and with fp16 weights."""
    shutil.copytree(entry, target, ignore=lambda folder, names: [n for n in names if n in LEFT_OUT])
    cast_weights(entry / WEIGHTS, target / WEIGHTS, "float16")


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def working_tree_bytes() -> int:
    """What the device tool carries besides the kit: git's tracked and untracked files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sum(
        (REPO_ROOT / name).stat().st_size
        for name in listed.decode().split("\0")
        if name and (REPO_ROOT / name).is_file()
    )


def build(kit: Path, home: Path, tag: str | None, python_version: str) -> dict[str, Any]:
    use_stores(home)
    if tag is None:
        ensure_champion(MODEL, QUICK_CONFIG)
        tag = champion_tag(MODEL, home)[1]
    import bentoml

    stored = bentoml.models.get(tag)
    if kit.exists():
        shutil.rmtree(kit)
    wheels = kit / "wheels"
    wheels.mkdir(parents=True)
    requirements = locked_versions(KIT_PACKAGES)
    subprocess.run(download_command(requirements, wheels, python_version), check=True)
    name, version = str(stored.tag).split(":")
    copy_model(Path(stored.path), kit / "store" / name / version)
    manifest: dict[str, Any] = {
        "tag": str(stored.tag),
        "python": python_version,
        "requirements": requirements,
        "wheels": sorted(path.name for path in wheels.glob("*.whl")),
        "weights": "float16",
    }
    missing = [r for r in requirements if not _has_wheel(manifest["wheels"], r)]
    if missing:
        raise SystemExit(f"no wheel came for {missing}")
    manifest["kit_bytes"] = tree_bytes(kit)
    manifest["working_tree_bytes"] = working_tree_bytes()
    manifest["carry_bytes"] = manifest["kit_bytes"] + manifest["working_tree_bytes"]
    (kit / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _has_wheel(wheels: list[str], requirement: str) -> bool:
    # A wheel's file name is `{name}-{version}-...`, the name with `_` (or, in older ones,
    # `.`) for `-`: compared normalized.
    name, _, version = requirement.partition("==")
    wanted = (normalize_name(name), version)
    return any(
        (normalize_name(wheel.split("-")[0]), wheel.split("-")[1]) == wanted for wheel in wheels
    )


def restore(kit: Path, home: Path) -> str:
    """The kit's model into ``home``'s BentoML store with fp32 weights; its tag (the shell
    script reads it from the output)."""
    manifest = json.loads((kit / "manifest.json").read_text())
    name, version = manifest["tag"].split(":")
    target = home / "bentoml" / "models" / name / version
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(kit / "store" / name / version, target)
    cast_weights(target / WEIGHTS, target / WEIGHTS, "float32")
    (target.parent / "latest").write_text(version)
    return str(manifest["tag"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build", help="wheels + fp16 model entry into --kit")
    make.add_argument("--kit", type=Path, default=KIT)
    make.add_argument("--home", type=Path, default=REPO_ROOT / ".mlops")
    make.add_argument("--model-tag", help="a stored text model (default: the champion)")
    make.add_argument("--python-version", default=DEVICE_PYTHON, help="the device's Python")
    back = sub.add_parser("restore", help="(on the device) the model into --home, fp32")
    back.add_argument("--kit", type=Path, default=KIT)
    back.add_argument("--home", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "restore":
        print(restore(args.kit, args.home.resolve()))
        return 0
    manifest = build(args.kit.resolve(), args.home.resolve(), args.model_tag, args.python_version)
    mib = 1024 * 1024
    print(
        f"{args.kit}: {len(manifest['wheels'])} wheels, model {manifest['tag']} (fp16); "
        f"kit {manifest['kit_bytes'] / mib:.1f} MiB + working tree "
        f"{manifest['working_tree_bytes'] / mib:.1f} MiB = {manifest['carry_bytes'] / mib:.1f} "
        f"MiB of the {CARRY_LIMIT_BYTES / mib:.0f} MiB the device tool carries"
    )
    if manifest["carry_bytes"] > CARRY_LIMIT_BYTES:
        print("over the carry limit: the device tool would refuse it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
