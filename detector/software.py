"""What this worker runs: its package version and SHA-256 digests of its code and model weights.

Computed once at start from the installed files and sent in every heartbeat, so the operator's
approved-release list (and the public register) can tell an approved build from a modified one.

The code digest covers the Python files of the packages a worker runs (``contract`` and
``detector``), reproducible with standard tools from the folder that holds them::

    find contract detector -name '*.py' -not -path '*/__pycache__/*' | LC_ALL=C sort \\
        | xargs sha256sum | sha256sum

that is: the SHA-256 of the ``sha256sum`` listing of those files, sorted by path.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from contract import Software

DISTRIBUTION = "tally"
CODE_PACKAGES = ("contract", "detector")
UNKNOWN_VERSION = "0+unknown"
CHUNK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (weights can be hundreds of megabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def package_root(name: str) -> Path:
    """The folder that holds an importable package (site-packages, or the checkout)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).parent


def code_files(packages: Iterable[str] = CODE_PACKAGES) -> list[tuple[str, Path]]:
    """(path relative to the package's folder, file) of every Python file, sorted by path."""
    found = []
    for name in packages:
        root = package_root(name)
        for path in (root / name).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def code_sha256(packages: Iterable[str] = CODE_PACKAGES) -> str:
    """SHA-256 of the ``sha256sum`` listing of the packages' Python files (see module doc)."""
    listing = "".join(f"{file_sha256(path)}  {name}\n" for name, path in code_files(packages))
    return hashlib.sha256(listing.encode()).hexdigest()


def installed_version() -> str:
    """The installed distribution's version (a bare checkout has none)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN_VERSION


def describe_software(model_path: str) -> Software:
    """This worker's self-description; the model digest is null when the weights are not a
    local file (an official model name the worker has not fetched)."""
    weights = Path(model_path)
    return Software(
        version=installed_version(),
        code_sha256=code_sha256(),
        model_sha256=file_sha256(weights) if weights.is_file() else None,
    )
