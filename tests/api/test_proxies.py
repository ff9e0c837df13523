"""Failed-credential limits count per client IP, and a client cannot choose its own IP.

Failed bearer checks on every kind of endpoint count against the caller's limit (admin tokens
on planner endpoints once did not). `X-Forwarded-For` is believed only from the proxies in
TALLY_TRUSTED_PROXIES; the checks against real `python -m api serve` processes on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from api_testkit import settings_for
from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.tally_api import free_port, wait_for_health

SECRET = "proxy-tests-R8pW2nK6vQ1xZ5mT9cL3hB7fJ0dG4sYa"
LIMIT = 3
BAD = {"Authorization": "Bearer not-a-token"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/sites"),
        ("GET", "/api/v1/devices/health"),
        ("GET", "/api/v1/admin/users"),
        ("POST", "/api/v1/admin/admin-tokens"),
        ("POST", "/api/v1/reports"),
        ("GET", "/api/v1/auth/me"),
    ],
)
def test_bad_bearer_tokens_are_limited(database_url: str, method: str, path: str) -> None:
    settings = settings_for(database_url).model_copy(
        update={"auth_failure_rate_limit": f"{LIMIT}/minute"}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        codes = [client.request(method, path, headers=BAD).status_code for _ in range(LIMIT)]
        refused = client.request(method, path, headers=BAD)
    assert codes == [401] * LIMIT
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0


def server_env(workdir: Path, trusted_proxies: str | None) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TALLY_")},
        "TALLY_DATABASE_URL": f"sqlite:///{workdir / 'tally.db'}",
        "TALLY_ENVIRONMENT": "test",
        "TALLY_SECRET_KEY": SECRET,
        "TALLY_AUTH_FAILURE_RATE_LIMIT": f"{LIMIT}/minute",
    }
    if trusted_proxies is not None:
        env["TALLY_TRUSTED_PROXIES"] = trusted_proxies
    return env


def serve_command(port: int, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "api",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *flags,
    ]


@contextmanager
def served(workdir: Path, trusted_proxies: str | None, *flags: str) -> Iterator[str]:
    """`python -m api serve` on loopback with a fresh SQLite file; its base URL."""
    port = free_port()
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            serve_command(port, "--log-level", "warning", *flags),
            env=server_env(workdir, trusted_proxies),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_for_health(base_url, process)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=10)


def failures(base_url: str, forwarded_for: list[str]) -> list[int]:
    """Statuses of one bad-token planner request per X-Forwarded-For value."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        return [
            client.get("/api/v1/sites", headers={**BAD, "X-Forwarded-For": ip}).status_code
            for ip in forwarded_for
        ]


ROTATING = [f"203.0.113.{n}" for n in range(1, LIMIT + 3)]
"""More spoofed addresses than the limit allows failures."""


@pytest.mark.parametrize(
    ("trusted_proxies", "flags"),
    [
        (None, ()),
        ('["10.9.0.0/16"]', ()),
        ('["10.9.0.0/16", "192.0.2.7"]', ("--proxy-headers",)),
    ],
)
def test_a_forwarded_for_from_an_untrusted_client_is_ignored(
    tmp_path: Path, trusted_proxies: str | None, flags: tuple[str, ...]
) -> None:
    """Rotating spoofed addresses: the limit still counts the real one (127.0.0.1)."""
    with served(tmp_path, trusted_proxies, *flags) as base_url:
        codes = failures(base_url, ROTATING)
    assert codes == [401] * LIMIT + [429] * (len(ROTATING) - LIMIT)


@pytest.mark.parametrize("trusted_proxies", ['["127.0.0.1"]', '["127.0.0.0/8", "::1"]'])
def test_a_trusted_proxy_forwards_the_client_address(tmp_path: Path, trusted_proxies: str) -> None:
    with served(tmp_path, trusted_proxies) as base_url:
        rotating = failures(base_url, ROTATING)
        # the proxy's own address is not what counts: one forwarded client fills its limit
        one_client = failures(base_url, ["198.51.100.9"] * (LIMIT + 1))
        # the right-most untrusted address is the client, whatever it claims before it
        chained = failures(base_url, ["192.0.2.1, 198.51.100.9"])
    assert rotating == [401] * len(ROTATING)
    assert one_client == [401] * LIMIT + [429]
    assert chained == [429]


@pytest.mark.parametrize(
    ("trusted_proxies", "flags", "message"),
    [
        (None, ("--proxy-headers",), "--proxy-headers needs TALLY_TRUSTED_PROXIES"),
        ("[]", ("--proxy-headers",), "--proxy-headers needs TALLY_TRUSTED_PROXIES"),
        ('["*"]', (), "'*' is not an IP address or CIDR"),
        ('["proxy.local"]', (), "'proxy.local' is not an IP address or CIDR"),
    ],
)
def test_serve_refuses_to_trust_everyone(
    tmp_path: Path, trusted_proxies: str | None, flags: tuple[str, ...], message: str
) -> None:
    finished = subprocess.run(
        serve_command(free_port(), "--no-migrate", *flags),
        env=server_env(tmp_path, trusted_proxies),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert message in finished.stderr
