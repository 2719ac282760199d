"""The layering rules hold, and importing the packages has no side effects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def _snapshot(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if ".venv" not in path.parts
        and "__pycache__" not in path.parts
        and ".git" not in path.parts
        and ".mypy_cache" not in path.parts
        and ".pytest_cache" not in path.parts
        and ".ruff_cache" not in path.parts
        and ".import_linter_cache" not in path.parts
    }


def test_import_linter_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is part of the dev install"
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


def test_importing_the_packages_creates_no_files(tmp_path: Path) -> None:
    before_repo = _snapshot(REPO_ROOT)
    result = subprocess.run(
        [
            sys.executable,
            "-B",
            "-c",
            "import domain, application, infrastructure, shared;"
            "import infrastructure.cli, infrastructure.bootstrap, infrastructure.config.settings",
        ],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    assert _snapshot(REPO_ROOT) == before_repo
