"""Run `mlops serve` (`bentoml serve` with its own metrics folder) as a user would: a
subprocess on 127.0.0.1, stopped with SIGINT."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.http_load import free_port
from tests.conftest import REPO_ROOT


def bentoml_cli() -> str:
    executable = shutil.which("bentoml", path=str(Path(sys.executable).parent))
    assert executable, "bentoml is installed by make install"
    return executable


def build_bento(env: dict[str, str], *options: str) -> str:
    """`bentoml build` in the repository root with ``env`` added; returns the new Bento's tag."""
    built = subprocess.run(
        [bentoml_cli(), "build", *options, "--output", "tag"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


def mlops_cli() -> str:
    executable = shutil.which("mlops", path=str(Path(sys.executable).parent))
    assert executable, "the mlops console script is installed by make install"
    return executable


@contextmanager
def bentoml_server(target: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """Serve ``target`` (import path or Bento tag); yields the base URL. Several may run at
    once on the session's store (each has its own metrics folder)."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [mlops_cli(), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
