"""The `python -m detector count` command over a reference clip, as tests and benches run it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def count_command(clip: Path, lines: Iterable[Mapping[str, Any]], model: Path) -> list[str]:
    """The command for ``clip`` with reference-count lines (``coords`` X1,Y1,X2,Y2 and ``name``)."""
    line_args = [
        "--line=" + ",".join(map(str, line["coords"])) + "," + line["name"] for line in lines
    ]
    return [
        sys.executable,
        "-m",
        "detector",
        "count",
        "--source",
        str(clip),
        "--model",
        str(model),
        "--json",
        *line_args,
    ]


def run_detector(command: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    """Run a detector command from the repository root with ``cache`` as its model cache;
    it must succeed."""
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        timeout=600,
        env={**os.environ, "TALLY_MODEL_CACHE": str(cache)},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed
