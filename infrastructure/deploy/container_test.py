"""``make container-test``: build the tabular service's image and run it as the Kubernetes
manifests do (their user, read-only root filesystem, only their writable paths mounted,
their settings; read from ``deploy/k8s/base`` rendered). Then check ``/readyz``, a
prediction, a bad input (400), ``/metrics`` and the UI. Prints and saves the figures (build
time, image size, time to ready) as JSON; removes the container, the image (unless
``--keep-image``) and the temporary model store.

Without ``--use-store`` it trains and promotes iris into a temporary store first, so the
user's ``.mlops`` is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

BASE_IMAGE = "docker.io/library/python:3.11-slim"
REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "container_test.json"
IMAGE_USER = "bentoml"
SETOSA = [5.1, 3.5, 1.4, 0.2]


def _podman(*args: str, check: bool = True, timeout: float = 600) -> str:
    from infrastructure.deploy.images import podman_env

    done = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {args[0]} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def ensure_base_image() -> str:
    """The base image: present, pulled, or built locally (no registry reachable)."""
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return "present"
    try:
        _podman("pull", BASE_IMAGE, timeout=120)
        return "pulled"
    except (RuntimeError, subprocess.TimeoutExpired):
        subprocess.run([str(REPO / "deploy" / "podman" / "base-image.sh")], check=True)
        return "built with mmdebstrap"


def manifest_runtime() -> tuple[list[str], dict[str, str], int]:
    """What deploy/k8s/base gives the container: its writable mounts, its settings and
    its user, so the container runs here as it would in the cluster."""
    from infrastructure.deploy.k8s_checks import render, settings_config

    objects = render(REPO / "deploy" / "k8s" / "base")
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    config = settings_config(objects)
    # The service, not the edge beside it.
    pod = deployment["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == "service"]
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    return writable, dict(config["data"]), int(pod["securityContext"]["runAsUser"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _train_iris(home: Path, model: str) -> None:
    mlops = str(Path(sys.executable).parent / "mlops")
    config = home / "iris.yaml"
    text = (REPO / "configs" / "iris.yaml").read_text()
    config.write_text(text.replace("iris-classifier", model))
    for command in (["train", str(config)], ["promote", model]):
        subprocess.run([mlops, *command], check=True, env=dict(os.environ), cwd=REPO)


def _checks(url: str, started: float) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the container was not ready within 180 s")
        time.sleep(0.5)
    ready_s = time.perf_counter() - started
    answer = httpx.post(f"{url}/classify", json={"rows": [SETOSA]}, timeout=10)
    assert answer.status_code == 200, answer.text
    [prediction] = answer.json()
    assert prediction["label"] == "setosa", prediction
    bad = httpx.post(f"{url}/classify", json={"rows": [[1.0, "x", 2.0, 3.0]]}, timeout=10)
    assert bad.status_code == 400 and "valid number" in bad.text, bad.text
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert "mlops_predictions_total" in metrics, "no mlops_ metrics"
    ui = httpx.get(f"{url}/ui/", timeout=10)
    assert ui.status_code == 200 and "bento-mlops" in ui.text
    return {
        "ready_s": round(ready_s, 1),
        "prediction": prediction["label"],
        "model_version": prediction["model_version"],
        "bad_input_status": bad.status_code,
    }


def run(model: str | None, keep_image: bool) -> dict[str, Any]:
    home: Path | None = None
    if model is None:
        home = Path(tempfile.mkdtemp(prefix="container-test-"))
        os.environ.update(
            MLOPS_HOME=str(home),
            MLOPS_BENTOML_HOME=str(home / "bentoml"),
            BENTOML_HOME=str(home / "bentoml"),
        )
        model = "container-test-iris"
        _train_iris(home, model)
    from infrastructure.deploy.images import build_image

    name = f"bento-mlops-test-{os.getpid()}"
    image = None
    try:
        base = ensure_base_image()
        built = build_image("tabular", model)
        image = built.image
        inspected = json.loads(_podman("image", "inspect", image))[0]
        config = inspected["Config"]
        assert config.get("User") == IMAGE_USER, f"image runs as {config.get('User')!r}"
        labels = config.get("Labels") or {}
        assert labels.get("io.bento-mlops.model.version") == built.model_version, labels
        port = _free_port()
        writable, settings, user = manifest_runtime()
        mounts = [arg for path in writable for arg in ("--tmpfs", f"{path}:rw,mode=1777")]
        mounts += [arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")]
        started = time.perf_counter()
        _podman(
            "run", "-d", "--name", name, "--read-only", "--user", f"{user}:{user}", *mounts,
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-p", f"127.0.0.1:{port}:3000", image,
        )  # fmt: skip
        try:
            checks = _checks(f"http://127.0.0.1:{port}", started)
        except Exception:
            logs = subprocess.run(
                ["podman", "logs", name], capture_output=True, text=True, check=False
            )
            print((logs.stdout + logs.stderr)[-6000:], file=sys.stderr)
            raise
        return {
            **asdict(built),
            "size_mb": round(built.size_bytes / 2**20, 1),
            "base_image": base,
            "user": config.get("User"),
            "run_as": user,
            "writable_paths": writable,
            **checks,
        }
    finally:
        _podman("rm", "-f", name, check=False)
        if image and not keep_image:
            _podman("rmi", "-f", image, check=False)
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--use-store",
        metavar="MODEL",
        help="containerize this model's champion from MLOPS_HOME instead of training one",
    )
    parser.add_argument("--keep-image", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("podman") is None:
        print("podman is not installed (make system-deps-containers)", file=sys.stderr)
        return 2
    report = run(args.use_store, args.keep_image)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
