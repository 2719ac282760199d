"""Convert ``poetry.lock`` into a pip constraints file for this platform and Python.

This module must run in a bare virtual environment (before the project is installed), so it
uses only the standard library and the ``packaging`` copy that pip vendors.

    python -m infrastructure.dependencies.lock_constraints poetry.lock -o constraints.txt
    python -m infrastructure.dependencies.lock_constraints poetry.lock --version-of torch
    python -m infrastructure.dependencies.lock_constraints poetry.lock --verify
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

try:  # pragma: no cover - which copy exists depends on the environment
    from packaging.markers import Marker
    from packaging.version import Version
except ImportError:  # pragma: no cover
    from pip._vendor.packaging.markers import Marker  # type: ignore[assignment]
    from pip._vendor.packaging.version import Version  # type: ignore[assignment]


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    markers: str | None
    groups: tuple[str, ...]

    @property
    def normalized_name(self) -> str:
        return normalize_name(self.name)


def normalize_name(name: str) -> str:
    """PEP 503 normalisation, so `Flask`, `flask` and `flask_` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(lock_path: Path) -> list[LockedPackage]:
    data = tomllib.loads(lock_path.read_text(encoding="utf-8"))
    packages = []
    for entry in data.get("package", []):
        markers = entry.get("markers")
        if isinstance(markers, dict):
            # Poetry writes per-group markers as a table when groups disagree; a package is
            # wanted here if any group's marker holds.
            markers = " or ".join(f"({value})" for value in markers.values())
        packages.append(
            LockedPackage(
                name=entry["name"],
                version=entry["version"],
                markers=markers,
                groups=tuple(entry.get("groups", ["main"])),
            )
        )
    return packages


def applies_here(package: LockedPackage, environment: Mapping[str, str] | None = None) -> bool:
    """True when the package's lock markers hold for ``environment`` (default: this one)."""
    if not package.markers:
        return True
    env: dict[str, str] = {"extra": ""}
    if environment:
        env.update(environment)
    return bool(Marker(package.markers).evaluate(env))


def constraints_for(
    packages: Iterable[LockedPackage],
    environment: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
) -> list[str]:
    """``name==version`` lines for every locked package that applies to ``environment``."""
    skipped = {normalize_name(name) for name in skip}
    versions: dict[str, set[str]] = {}
    for package in packages:
        if package.normalized_name not in skipped and applies_here(package, environment):
            versions.setdefault(package.normalized_name, set()).add(package.version)
    lines = []
    for name, locked in sorted(versions.items()):
        if len(locked) == 1:
            lines.append(f"{name}=={locked.pop()}")
        else:
            # Poetry locked two versions for different dependency paths that both hold on
            # this platform; pip takes one constraint per name, so bound it by the two.
            ordered = sorted(locked, key=Version)
            lines.append(f"{name}>={ordered[0]},<={ordered[-1]}")
    return lines


def version_of(packages: Iterable[LockedPackage], name: str) -> str:
    wanted = normalize_name(name)
    for package in packages:
        if package.normalized_name == wanted:
            return package.version
    raise KeyError(f"{name} is not in the lock file")


def mismatches(
    packages: Iterable[LockedPackage], installed: Mapping[str, str] | None = None
) -> list[str]:
    """Installed distributions whose version differs from the lock (local tags ignored)."""
    if installed is None:
        installed = {
            normalize_name(dist.metadata["Name"]): dist.version
            for dist in importlib.metadata.distributions()
        }
    locked: dict[str, set[str]] = {}
    for package in packages:
        locked.setdefault(package.normalized_name, set()).add(Version(package.version).public)
    problems = []
    for name, versions in locked.items():
        have = installed.get(name)
        if have is not None and Version(have).public not in versions:
            problems.append(f"{name}: installed {have}, locked {' or '.join(sorted(versions))}")
    return sorted(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("lock", type=Path, help="path to poetry.lock")
    parser.add_argument("-o", "--output", type=Path, help="write constraints here (default stdout)")
    parser.add_argument("--skip", action="append", default=[], help="package to leave out")
    parser.add_argument("--version-of", help="print the locked version of one package")
    parser.add_argument(
        "--verify", action="store_true", help="fail if an installed package differs from the lock"
    )
    args = parser.parse_args(argv)
    packages = read_lock(args.lock)
    if args.version_of:
        print(version_of(packages, args.version_of))
        return 0
    if args.verify:
        problems = mismatches(packages)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"all installed distributions match {args.lock}")
        return 1 if problems else 0
    text = "\n".join(constraints_for(packages, skip=args.skip)) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
