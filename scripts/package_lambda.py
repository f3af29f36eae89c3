#!/usr/bin/env python3
"""Build the Lambda artifact `dist/lambda.zip` reproducibly: same inputs, same bytes.

The zip holds our packages (`domain`, `ports`, `adapters`, `entrypoints`, without what only
runs locally) and the dependencies that pyproject.toml declares for the handlers (see
LAMBDA_EXTRAS), with theirs, except what the Lambda Python runtime already provides (boto3 and
its dependencies). The list is read from this checkout's pyproject.toml, the versions from this
project's virtual environment (importlib.metadata, so the artifact runs what the tests ran), as
wheels for the Lambda platform (python3.12, arm64), downloaded once into a cache directory and
installed from there without the network.

Reproducible: entries sorted by path, every timestamp 1980-01-01 00:00, every file mode 0644,
no directory entries, no `__pycache__` or `.pyc`, no file that names the build's own paths.
Deflate output depends on the zlib build, so byte equality is promised for one machine (CI
rebuilds with its own zlib; the files inside are identical either way).

Usage: python scripts/package_lambda.py [--output dist/lambda.zip] [--wheel-cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# The extras of pyproject.toml the handlers need, on top of the core dependencies (`cli`, with
# python-hcl2, is not one of them).
LAMBDA_EXTRAS: tuple[str, ...] = ("lambda",)

# Our code. Paths (relative to the repository, `/` separated) that never go to Lambda: the
# local server and CLI, and `citas provision`, which reads Terraform with python-hcl2.
PACKAGES = ("domain", "ports", "adapters", "entrypoints")
LOCAL_ONLY_PATHS = (
    "entrypoints/local/",
    "adapters/aws/resources.py",
    "adapters/aws/terraform_spec.py",
    "adapters/aws/provisioning.py",
    "adapters/aws/provision.py",
    "adapters/aws/migrate.py",
    "adapters/aws/migrate_plan.py",
)

# The Lambda Python runtime ships boto3 and these; packaging them would only shadow its copies.
# holidays (a core dependency) runs on the runtime's python-dateutil and six, botocore's.
PROVIDED_BY_RUNTIME = frozenset(
    canonicalize_name(n)
    for n in ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six")
)

# The Lambda platform, for wheels and for environment markers.
PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"
MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_machine": "aarch64",
    "platform_system": "Linux",
    "sys_platform": "linux",
    "os_name": "posix",
    "python_version": PYTHON_VERSION,
    "python_full_version": f"{PYTHON_VERSION}.0",
    "extra": "",
}

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
SKIPPED_PARTS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Written by pip, and naming the machine's paths (direct_url) or the tool: not reproducible.
SKIPPED_DIST_INFO = frozenset({"direct_url.json", "INSTALLER", "REQUESTED", "RECORD"})


class PackagingError(RuntimeError):
    """The artifact cannot be built as promised (a dependency missing, pip failing)."""


# --- dependencies ------------------------------------------------------------------------


def _installed_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError as e:
        raise PackagingError(
            f"{name} is a runtime dependency but is not installed in this environment"
            " (run `make install`)"
        ) from e


def _applies(requirement: Requirement, extra: str = "") -> bool:
    if requirement.marker is None:
        return True
    return Marker(str(requirement.marker)).evaluate({**MARKER_ENVIRONMENT, "extra": extra})


def declared_requirements(
    extras: Iterable[str] = LAMBDA_EXTRAS, root: Path = ROOT
) -> list[Requirement]:
    """The core dependencies of `root`'s pyproject.toml and those of `extras`, as declared.

    Read from the file, not from the installed project's metadata: an editable install keeps
    the metadata of the day it was installed, possibly of another checkout. An extra that
    names the project itself (`citas[aws]`) brings that extra's list in.
    """
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    own_name = canonicalize_name(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    found: list[Requirement] = []
    wanted = ["", *extras]  # "" is the core list
    done: set[str] = set()
    while wanted:
        extra = wanted.pop()
        if extra in done:
            continue
        done.add(extra)
        if extra and extra not in optional:
            raise PackagingError(f"pyproject.toml has no extra {extra!r}")
        for line in project.get("dependencies", []) if not extra else optional[extra]:
            requirement = Requirement(line)
            if not _applies(requirement):
                continue
            if canonicalize_name(requirement.name) == own_name:
                wanted.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def runtime_dependencies(root: Path = ROOT) -> dict[str, str]:
    """Canonical name -> pinned version of every dependency the artifact must carry."""
    pins: dict[str, str] = {}
    # (name, extra) already expanded; "" stands for the distribution without extras.
    expanded: set[tuple[str, str]] = set()
    todo = declared_requirements(LAMBDA_EXTRAS, root)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in PROVIDED_BY_RUNTIME:
            continue
        if name not in pins:
            pins[name] = _installed_version(name)
        # A dependency asked for with extras (`pkg[x]`) brings what those extras declare.
        for extra in ("", *sorted(canonicalize_name(e) for e in requirement.extras)):
            if (name, extra) in expanded:
                continue
            expanded.add((name, extra))
            for line in metadata.requires(name) or []:
                dependency = Requirement(line)
                if _applies(dependency, extra):
                    todo.append(dependency)
    return dict(sorted(pins.items()))


def _wheel_pattern(name: str, version: str) -> re.Pattern[str]:
    # Wheel file names use the name with runs of -_. as `_`, in any case.
    stem = re.sub(r"[-_.]+", "_", name)
    return re.compile(rf"^{re.escape(stem)}-{re.escape(version)}-.+\.whl$", re.IGNORECASE)


def _cached(cache: Path, name: str, version: str) -> bool:
    pattern = _wheel_pattern(name, version)
    return cache.is_dir() and any(pattern.match(p.name) for p in cache.iterdir())


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackagingError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def _platform_flags() -> list[str]:
    return [
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-deps",
    ]


def fetch_wheels(pins: dict[str, str], cache: Path) -> None:
    """Download the Lambda-platform wheel of every pin not yet in `cache`."""
    missing = [f"{n}=={v}" for n, v in pins.items() if not _cached(cache, n, v)]
    if missing:
        cache.mkdir(parents=True, exist_ok=True)
        _pip("download", *_platform_flags(), "--dest", str(cache), *missing)


def install_wheels(pins: dict[str, str], cache: Path, target: Path) -> None:
    """Install the pinned wheels from `cache` into `target`, offline, without bytecode."""
    requirements = [f"{n}=={v}" for n, v in pins.items()]
    _pip(
        "install",
        *_platform_flags(),
        "--no-index",
        "--find-links",
        str(cache),
        "--no-compile",
        "--target",
        str(target),
        *requirements,
    )


# --- files ---------------------------------------------------------------------------------


def _keep(relative: str) -> bool:
    parts = relative.split("/")
    if SKIPPED_PARTS.intersection(parts) or relative.endswith(SKIPPED_SUFFIXES):
        return False
    return not (
        len(parts) >= 2 and parts[-2].endswith(".dist-info") and parts[-1] in SKIPPED_DIST_INFO
    )


def _walk(base: Path, top: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(top.rglob("*")):
        if path.is_file():
            yield path.relative_to(base).as_posix(), path


def project_files(root: Path = ROOT) -> Iterator[tuple[str, Path]]:
    """(archive name, file) of our packages, without local-only code and bytecode."""
    for package in PACKAGES:
        for name, path in _walk(root, root / package):
            if _keep(name) and not name.startswith(LOCAL_ONLY_PATHS):
                yield name, path


def dependency_files(target: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, file) of the installed dependencies; console scripts left out."""
    for name, path in _walk(target, target):
        if _keep(name) and not name.startswith("bin/"):
            yield name, path


def write_zip(entries: Iterable[tuple[str, Path]], output: Path) -> None:
    """Write `entries` sorted, with fixed dates and modes, to `output` (atomically)."""
    ordered = sorted(entries)
    names = [name for name, _ in ordered]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PackagingError(f"two sources for {duplicates}")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in ordered:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.create_system = 3  # Unix, so that the mode below is read
            info.external_attr = (0o100000 | FILE_MODE) << 16  # a regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    os.replace(partial, output)


def build(output: Path, cache: Path, root: Path = ROOT) -> dict[str, str]:
    """Build the artifact at `output`; return the pinned dependencies it carries."""
    pins = runtime_dependencies(root)
    fetch_wheels(pins, cache)
    with tempfile.TemporaryDirectory(prefix="citas-lambda-") as tmp:
        target = Path(tmp) / "deps"
        install_wheels(pins, cache, target)
        entries = [*project_files(root), *dependency_files(target)]
        ours = {name.split("/")[0] for name, _ in project_files(root)}
        theirs = {name.split("/")[0] for name, _ in dependency_files(target)}
        if ours & theirs:
            raise PackagingError(f"a dependency ships a top-level {sorted(ours & theirs)}")
        write_zip(entries, output)
    return pins


def main(argv: list[str] | None = None) -> int:
    """Build the zip and print its size, sha256 and dependencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / "lambda.zip")
    parser.add_argument(
        "--wheel-cache",
        type=Path,
        default=Path(os.environ.get("CITAS_WHEEL_CACHE", ROOT / ".venv-tools" / "wheels")),
        help="where Lambda-platform wheels are kept between builds",
    )
    args = parser.parse_args(argv)
    try:
        pins = build(args.output, args.wheel_cache)
    except PackagingError as e:
        print(f"package_lambda: {e}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    size = args.output.stat().st_size
    deps = ", ".join(f"{n}=={v}" for n, v in pins.items())
    print(f"{args.output}: {size} bytes, sha256 {digest}")
    print(f"dependencies: {deps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
