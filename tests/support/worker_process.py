"""The worker as a subprocess (`python -m detector -v run`) with its log, for end-to-end tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Worker:
    """The worker subprocess and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])


def eventually(condition: Callable[[], bool], timeout_s: float, what: str, worker: Worker) -> float:
    """Poll every 0.25 s; fail with the worker's log tail. Returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if worker.process.poll() is not None:
            raise AssertionError(
                f"worker exited ({worker.process.returncode}) waiting for {what}:\n{worker.tail()}"
            )
        if time.monotonic() - started > timeout_s:
            raise AssertionError(
                f"timed out after {timeout_s} s waiting for {what}:\n{worker.tail()}"
            )
        time.sleep(0.25)
    return time.monotonic() - started


@contextlib.contextmanager
def running_worker(config: Path, api_url: str, workdir: Path) -> Iterator[Worker]:
    """`python -m detector -v run`; killed at the end if the test did not stop it."""
    log_path = workdir / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "detector",
                "-v",
                "run",
                "--config",
                str(config),
                "--api-url",
                api_url,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        try:
            yield Worker(process, log_path)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
