"""`bentoml serve` with a Prometheus folder of the server's own.

BentoML keeps its workers' metric files (prometheus_client's multi-process mode) in
``$BENTOML_HOME/prometheus_multiproc_dir`` and empties that folder when a server starts.
Two servers on one store (``make serve`` starts the tabular and the text service) therefore
shared it, and the second one to start deleted the first one's files: the first server's
/metrics then lost every series written before (its counters read 0, a live-Prometheus test
found the tabular service's panels empty). BentoML has no setting for the folder, only its
container's provider, which the CLI reads when it starts serving.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

METRICS_FOLDER_PREFIX = "prometheus_multiproc_dir."


def own_metrics_folder(bentoml_home: Path, pid: int) -> Path:
    return bentoml_home / f"{METRICS_FOLDER_PREFIX}{pid}"


def serve(target: str, options: Sequence[str]) -> int:
    """Runs ``bentoml serve TARGET OPTIONS`` in this process; returns its exit status."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml_cli.cli import cli

    home = Path(BentoMLContainer.bentoml_home.get())
    _remove_folders_of_dead_servers(home)
    folder = own_metrics_folder(home, os.getpid())
    BentoMLContainer.prometheus_multiproc_dir.set(str(folder))
    try:
        cli.main(["serve", target, *options], prog_name="bentoml", standalone_mode=True)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _remove_folders_of_dead_servers(home: Path) -> None:
    """A server killed with SIGKILL leaves its folder; the next start removes it."""
    for folder in home.glob(f"{METRICS_FOLDER_PREFIX}*"):
        pid = folder.name.removeprefix(METRICS_FOLDER_PREFIX)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
