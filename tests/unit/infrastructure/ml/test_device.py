"""The CPU budget the text models size their threads by."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from infrastructure.ml.device import usable_cores
from tests.conftest import REPO_ROOT


def test_usable_cores_is_at_most_the_machines_count() -> None:
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to pin to 1")
def test_usable_cores_follows_the_process_affinity() -> None:
    # In a child: the affinity is process-wide and the test process runs other threads.
    script = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from infrastructure.ml.device import usable_cores; print(usable_cores(), os.cpu_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    pinned, machine = (int(value) for value in result.stdout.split())
    assert pinned == 1
    assert machine >= 2, "os.cpu_count() does not see the affinity, hence usable_cores()"
