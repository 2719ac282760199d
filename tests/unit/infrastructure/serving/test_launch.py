"""The metrics folders of `mlops serve`: one per server process, the dead ones removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infrastructure.serving.launch import _remove_folders_of_dead_servers, own_metrics_folder


def test_folders_of_dead_servers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = own_metrics_folder(tmp_path, int(ended.stdout))
    live = own_metrics_folder(tmp_path, os.getpid())
    for folder in (dead, live):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"\0")
    shared = tmp_path / "prometheus_multiproc_dir"  # plain `bentoml serve`'s: not ours
    shared.mkdir()

    _remove_folders_of_dead_servers(tmp_path)

    assert not dead.exists()
    assert live.exists() and shared.exists()
