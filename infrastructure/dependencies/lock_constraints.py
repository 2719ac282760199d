"""Convert ``poetry.lock`` into a pip constraints file for this platform and Python.

This module must run in a bare virtual environment (before the project is installed), so it
uses only the standard library and the ``packaging`` copy that pip vendors.

    python -m infrastructure.dependencies.lock_constraints poetry.lock --extra dev -o c.txt
    python -m infrastructure.dependencies.lock_constraints poetry.lock --version-of torch
    python -m infrastructure.dependencies.lock_constraints poetry.lock --extra dev --verify

Markers are evaluated once per requested extra: a package locked with ``extra == "dev"`` is
pinned only when ``dev`` is asked for, and then it must be pinned, or pip takes whatever the
index serves that day.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
import sysconfig
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


def applies_here(
    package: LockedPackage,
    environment: Mapping[str, str] | None = None,
    extras: Iterable[str] = (),
) -> bool:
    """True when the package's lock markers hold for ``environment`` (default: this one)
    with the project installed with ``extras`` (the base install always counts)."""
    if not package.markers:
        return True
    marker = Marker(package.markers)
    for extra in ("", *extras):
        env: dict[str, str] = {"extra": extra}
        if environment:
            env.update(environment)
        if marker.evaluate(env):
            return True
    return False


def constraints_for(
    packages: Iterable[LockedPackage],
    environment: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
    extras: Iterable[str] = (),
) -> list[str]:
    """``name==version`` lines for every locked package that applies to ``environment``
    when the project is installed with ``extras``."""
    skipped = {normalize_name(name) for name in skip}
    wanted_extras = tuple(extras)
    versions: dict[str, set[str]] = {}
    for package in packages:
        if package.normalized_name not in skipped and applies_here(
            package, environment, wanted_extras
        ):
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


# Installed by the Makefile itself (pip at a pinned version) or the project under test; the
# lock describes the project's dependencies, not these.
NOT_LOCKED = frozenset({"pip", "bento-mlops"})


def installed_distributions() -> dict[str, str]:
    """Name -> version of each distribution pip installed into this interpreter's
    environment (its site-packages), not of everything on ``sys.path``: importing
    setuptools (as torch.compile's C++ builder does) appends setuptools' ``_vendor`` folder,
    with its own older importlib-metadata, zipp and platformdirs, to ``sys.path``."""
    paths = sysconfig.get_paths()
    folders = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=folders):
        found.setdefault(normalize_name(dist.metadata["Name"]), dist.version)
    return found


def uncovered(
    packages: Iterable[LockedPackage],
    installed: Mapping[str, str] | None = None,
    environment: Mapping[str, str] | None = None,
    extras: Iterable[str] = (),
) -> list[str]:
    """Installed distributions that the constraints for ``extras`` did not pin.

    Each one is a package whose version came from the index of the day: either the lock
    does not know it, or its lock markers did not hold when the constraints were written.
    """
    if installed is None:
        installed = installed_distributions()
    pinned = {
        line.split("=")[0].split(">")[0]
        for line in constraints_for(packages, environment, extras=extras)
    }
    return sorted(
        f"{name}: installed {version} without a lock pin"
        for name, version in installed.items()
        if name not in pinned and name not in NOT_LOCKED
    )


def mismatches(
    packages: Iterable[LockedPackage], installed: Mapping[str, str] | None = None
) -> list[str]:
    """Installed distributions whose version differs from the lock (local tags ignored)."""
    if installed is None:
        installed = installed_distributions()
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
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        help="an extra the project is installed with (repeatable); its packages get pinned",
    )
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
        problems = mismatches(packages) + uncovered(packages, extras=args.extra)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"all installed distributions match {args.lock}")
        return 1 if problems else 0
    text = "\n".join(constraints_for(packages, skip=args.skip, extras=args.extra)) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
