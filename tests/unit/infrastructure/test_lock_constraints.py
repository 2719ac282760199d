from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from infrastructure.dependencies.lock_constraints import (
    constraints_for,
    installed_distributions,
    main,
    mismatches,
    read_lock,
    uncovered,
    version_of,
)
from tests.conftest import REPO_ROOT

LOCK = """
[[package]]
name = "Flask_Login"
version = "0.6.3"
groups = ["main"]

[[package]]
name = "pywin32"
version = "311"
groups = ["main"]
markers = "sys_platform == \\"win32\\""

[[package]]
name = "nvidia-cublas"
version = "13.1.1.3"
groups = ["main"]
markers = "platform_system == \\"Linux\\""

[[package]]
name = "nvidia-cublas"
version = "13.10.0.20"
groups = ["main"]
markers = "platform_system == \\"Linux\\""

[[package]]
name = "pytest"
version = "8.4.0"
groups = ["dev"]
markers = {main = "python_version >= \\"3.99\\"", dev = "sys_platform == \\"linux\\""}

[[package]]
name = "coverage"
version = "7.17.4"
optional = true
groups = ["main"]
markers = "extra == \\"dev\\""

[[package]]
name = "colorama"
version = "0.4.6"
optional = true
groups = ["main"]
markers = "extra == \\"dev\\" and sys_platform == \\"win32\\""

[metadata]
lock-version = "2.1"
"""

LINUX = {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11"}
WINDOWS = {"sys_platform": "win32", "platform_system": "Windows", "python_version": "3.11"}


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    path = tmp_path / "poetry.lock"
    path.write_text(LOCK)
    return path


def test_markers_select_packages_for_the_platform(lock_file: Path) -> None:
    packages = read_lock(lock_file)

    linux = constraints_for(packages, LINUX)
    windows = constraints_for(packages, WINDOWS)

    assert "flask-login==0.6.3" in linux
    assert "pytest==8.4.0" in linux
    assert not any(line.startswith("pywin32") for line in linux)
    assert "pywin32==311" in windows
    assert not any(line.startswith("nvidia") for line in windows)


def test_two_locked_versions_become_a_bounded_range(lock_file: Path) -> None:
    lines = constraints_for(read_lock(lock_file), LINUX)
    assert "nvidia-cublas>=13.1.1.3,<=13.10.0.20" in lines


def test_skip_and_version_of(lock_file: Path) -> None:
    packages = read_lock(lock_file)
    assert version_of(packages, "flask-login") == "0.6.3"
    assert not any(
        line.startswith("pytest") for line in constraints_for(packages, LINUX, ["PyTest"])
    )
    with pytest.raises(KeyError):
        version_of(packages, "absent")


def test_mismatches_ignore_local_version_labels(lock_file: Path) -> None:
    packages = read_lock(lock_file)
    assert mismatches(packages, {"flask-login": "0.6.3", "nvidia-cublas": "13.10.0.20"}) == []
    assert mismatches(packages, {"pytest": "8.4.0+local"}) == []
    assert mismatches(packages, {"flask-login": "0.6.2"}) == [
        "flask-login: installed 0.6.2, locked 0.6.3"
    ]


def test_cli_writes_constraints_file(lock_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "constraints.txt"
    assert main([str(lock_file), "-o", str(out)]) == 0
    assert "flask-login==0.6.3" in out.read_text().splitlines()


def test_extra_only_packages_are_pinned_when_their_extra_is_installed(lock_file: Path) -> None:
    packages = read_lock(lock_file)

    base = constraints_for(packages, LINUX)
    with_dev = constraints_for(packages, LINUX, extras=["dev"])

    assert not any(line.startswith("coverage") for line in base)
    assert "coverage==7.17.4" in with_dev
    assert not any(line.startswith("colorama") for line in with_dev), "win32 only"
    assert "colorama==0.4.6" in constraints_for(packages, WINDOWS, extras=["dev"])


def test_uncovered_names_installed_packages_the_constraints_left_to_the_index(
    lock_file: Path,
) -> None:
    packages = read_lock(lock_file)
    installed = {"coverage": "7.17.5", "flask-login": "0.6.3", "left-pad": "1.0", "pip": "26.3"}

    assert uncovered(packages, installed, LINUX) == [
        "coverage: installed 7.17.5 without a lock pin",
        "left-pad: installed 1.0 without a lock pin",
    ]
    assert uncovered(packages, installed, LINUX, extras=["dev"]) == [
        "left-pad: installed 1.0 without a lock pin"
    ]


def test_cli_pins_the_extras_it_is_given(lock_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "constraints.txt"
    assert main([str(lock_file), "--extra", "dev", "-o", str(out)]) == 0
    assert "coverage==7.17.4" in out.read_text().splitlines()


def test_the_project_lock_pins_torch_2_13_and_matches_this_environment() -> None:
    packages = read_lock(REPO_ROOT / "poetry.lock")
    assert version_of(packages, "torch").startswith("2.13.")
    assert mismatches(packages) == []
    # Every installed package came from a constraint `make install` wrote, none from the index.
    assert uncovered(packages, extras=["dev"]) == []


def test_only_what_pip_installed_here_counts_not_all_of_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As setuptools' _vendor folder, appended to sys.path when setuptools is imported: an
    # older copy of an installed package, and one that is not installed at all.
    for name, version in (("zipp", "0.0.1"), ("vendored-only", "1.0")):
        folder = tmp_path / f"{name.replace('-', '_')}-{version}.dist-info"
        folder.mkdir()
        (folder / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    found = installed_distributions()
    assert found["zipp"] == importlib.metadata.version("zipp") != "0.0.1"
    assert "vendored-only" not in found
    assert "bento-mlops" in found, "the project's own editable install is in site-packages"
