"""The worker's self-description: version and digests that anyone can recompute."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from contract import Software
from detector.software import code_sha256, describe_software, file_sha256, package_root
from tests.conftest import MODEL


def test_the_code_digest_is_the_documented_shell_pipeline() -> None:
    """docs/register.md tells operators how to recompute it with find, sort and sha256sum."""
    folder = package_root("detector")
    assert package_root("contract") == folder
    pipeline = (
        "find contract detector -name '*.py' -not -path '*/__pycache__/*' | LC_ALL=C sort"
        " | xargs sha256sum | sha256sum"
    )
    done = subprocess.run(
        ["bash", "-c", pipeline], cwd=folder, capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[0] == code_sha256()


def test_the_code_digest_changes_with_any_code_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "register_probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("ANSWER = 42\n")
    monkeypatch.syspath_prepend(tmp_path)
    before = code_sha256([package.name])
    (package / "core.py").write_text("ANSWER = 43\n")
    changed = code_sha256([package.name])
    (package / "extra.py").write_text("")
    added = code_sha256([package.name])
    assert len({before, changed, added}) == 3


@pytest.mark.skipif(not MODEL.is_file(), reason=f"offline model missing: {MODEL}")
def test_the_model_digest_is_the_weights_files_sha256() -> None:
    software = describe_software(str(MODEL))
    assert software.model_sha256 == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert software.model_sha256 == file_sha256(MODEL)
    assert software.version == "0.1.0"
    Software.model_validate(software.model_dump())


def test_an_official_model_name_has_no_local_digest() -> None:
    assert describe_software("yolo26n.pt").model_sha256 is None
