"""Rate limits shared through Redis, and what happens while Redis is down.

Two apps on one real redis-server (the test's own, so it can stop and start it) count
together. While Redis is down each app counts alone again: limits still hold per process,
nobody is locked out, ingest goes on, the outage is logged once and /healthz says "degraded";
once Redis is back the limits are shared again. Two real processes: tests/deploy/test_replicas.py.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_testkit import T0, Account, add_account, batch, make_report, register, settings_for
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.limiting import REDIS_RETRY_AFTER_S
from api.settings import Settings
from tests.support.replicas import start_redis, stop
from tests.support.tally_api import free_port

LIMIT = 4
LOGIN = "/api/v1/auth/login"
RECOVERED = "is back"
WRONG = "a wrong guess"
PREFIX = "outage-test"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own: its port and process."""
    port = free_port()
    process = start_redis(port, tmp_path)
    try:
        yield port, process
    finally:
        stop(process)


def guess(client: TestClient, account: Account, password: str = WRONG) -> int:
    return client.post(LOGIN, json={"email": account.email, "password": password}).status_code


def health(client: TestClient) -> dict[str, str]:
    response = client.get("/healthz")
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def test_without_redis_health_is_unchanged(client: TestClient) -> None:
    """The embedded default: limits per process, and /healthz as it always was."""
    assert health(client) == {"status": "ok", "database": "ok"}


def test_a_redis_outage_falls_back_to_per_process_limits(
    database_url: str,
    tmp_path: Path,
    own_redis: tuple[int, subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_port, redis_process = own_redis
    caplog.set_level(logging.WARNING, logger="api.limiting")
    settings = settings_for(
        database_url,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        redis_key_prefix=PREFIX,
        login_rate_limit=f"{LIMIT}/minute",
    )
    camera = register(settings)
    apps = [create_app(settings), create_app(settings)]
    with (
        TestClient(apps[0], client=("192.0.2.61", 1000)) as one,
        TestClient(apps[1], client=("192.0.2.62", 1000)) as other,
    ):
        assert health(one) == {"status": "ok", "database": "ok", "rate_limits": "ok"}
        shared = add_account(settings)
        codes = [guess((one, other)[n % 2], shared) for n in range(LIMIT + 2)]
        assert codes == [401] * LIMIT + [429, 429], "counted together"

        stop(redis_process)
        assert health(one) == {
            "status": "degraded",
            "database": "ok",
            "rate_limits": "unavailable",
        }
        report = batch(make_report(camera.camera, T0))
        posted = one.post("/api/v1/reports", json=report, headers=camera.auth)
        assert posted.status_code == 200, "ingest goes on"
        rightful = add_account(settings)
        assert guess(other, rightful, rightful.password) == 200, "nobody is locked out"
        alone = add_account(settings)
        assert [guess(one, alone) for _ in range(LIMIT + 1)] == [401] * LIMIT + [429]
        assert guess(other, alone) == 401, "each process counts alone meanwhile"
        outages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(outages) == 2, "one line per process and outage, not one per request"
        assert all("unavailable" in message for message in outages)

        restarted = start_redis(redis_port, tmp_path)
        try:
            deadline = time.monotonic() + REDIS_RETRY_AFTER_S + 10
            while caplog.text.count(RECOVERED) < 2:
                assert time.monotonic() < deadline, "limits never went back to Redis"
                time.sleep(0.5)
                for client in (one, other):
                    client.post("/api/v1/reports", json=report, headers=camera.auth)
            assert health(other)["status"] == "ok"
            again = add_account(settings)
            codes = [guess((one, other)[n % 2], again) for n in range(LIMIT + 1)]
            assert codes == [401] * LIMIT + [429], "shared again"
        finally:
            stop(restarted)


@pytest.mark.parametrize("url", ["http://redis:6379", "redis:6379", "memcached://cache:11211"])
def test_a_redis_url_that_is_not_one_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="redis_url"):
        Settings(redis_url=url)


@pytest.mark.parametrize(
    "url", ["", "redis://redis:6379/0", "rediss://:secret@cache.example.org:6380/2"]
)
def test_redis_urls_are_accepted(url: str) -> None:
    assert Settings(redis_url=url).redis_url == url
