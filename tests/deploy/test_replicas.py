"""Two API replicas on one PostgreSQL and one Redis behave as one API.

Two real `python -m api serve` processes share a fresh PostgreSQL database and the local
Redis (under a key prefix of this run's own), and Caddy runs docker/Caddyfile in front of
them as docker-compose.yml does. The tests show that limits hold across the replicas (failed
logins and a device's ingest requests spread over both trip at the limit, not twice it), that
one batch posted to both at once is stored once (each report created by one answer and a
duplicate in the other, totals not doubled), and that the proxy spreads requests over both,
counts each client under its own address whatever X-Forwarded-For it sends, and keeps
answering when one replica is down.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from contract import IntervalReport
from tests.support.databases import scratch_postgres_database
from tests.support.replicas import SHARED_REDIS_URL, redis_key_space, running_caddy, stop
from tests.support.tally_api import (
    SeedCamera,
    TallyServer,
    add_site,
    free_port,
    register_camera,
    server_env,
    wait_for_health,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

LOGIN_LIMIT = 5
INGEST_LIMIT = 12
SITE = "replicated"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LOGIN = "/api/v1/auth/login"
REPORTS = "/api/v1/reports"
SERVE = [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1"]


@dataclass
class Replica:
    """One API process: where it listens, and its log (access lines included)."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    replicas: list[Replica]
    server: TallyServer
    database_url: str
    workdir: Path


def start_replica(env: dict[str, str], workdir: Path, port: int) -> Replica:
    log = workdir / f"api-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), "--no-migrate", "--log-level", "info"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    replica = Replica(port=port, process=process, log=log)
    wait_for_health(replica.url, process)
    return replica


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("replicas")
    with (
        scratch_postgres_database("tally_replicas", migrated=True) as database_url,
        redis_key_space() as prefix,
    ):
        env = server_env(database_url) | {
            "TALLY_REDIS_URL": SHARED_REDIS_URL,
            "TALLY_REDIS_KEY_PREFIX": prefix,
            "TALLY_LOGIN_RATE_LIMIT": f"{LOGIN_LIMIT}/minute",
            "TALLY_INGEST_RATE_LIMIT": f"{INGEST_LIMIT}/minute",
            "TALLY_TRUSTED_PROXIES": '["127.0.0.1"]',  # the proxy in front, on loopback
        }
        token = subprocess.run(
            [sys.executable, "-m", "api", "create-admin-token", "--name", "replicas"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        replicas: list[Replica] = []
        try:
            for _ in range(2):
                replicas.append(start_replica(env, workdir, free_port()))
            server = TallyServer(base_url=replicas[0].url, admin_token=token, env=env)
            with server.admin() as admin:
                add_site(admin, SITE, "Two replicas", 52.37, 4.89)
            yield Cluster(replicas, server, database_url, workdir)
        finally:
            for replica in replicas:
                stop(replica.process)


def login(url: str, email: str, password: str, client: str) -> int:
    """One password login from `client` (the address a trusted proxy forwards)."""
    response = httpx.post(
        f"{url}{LOGIN}",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": client},
        timeout=30,
    )
    return response.status_code


def body(*reports: IntervalReport) -> dict[str, Any]:
    return {"reports": [report.model_dump(mode="json") for report in reports]}


def history(camera_id: str, minutes: int, start: datetime = START) -> list[IntervalReport]:
    end = start + timedelta(minutes=minutes)
    return SeedCamera(camera_id, start, end, 60, ZoneInfo("UTC"), scale=2.0).reports()


def test_failed_logins_spread_over_both_replicas_trip_at_the_limit(cluster: Cluster) -> None:
    """Alternating replicas, guesses are refused after LOGIN_LIMIT in all, not twice that; the
    account stays refused on both replicas, even for the right password from elsewhere."""
    email = f"planner-{uuid.uuid4().hex[:8]}@example.org"
    password = cluster.server.add_user(email, password="replica tests correct horse")
    urls = [replica.url for replica in cluster.replicas]
    codes = [
        login(urls[attempt % 2], email, "a wrong guess", "198.51.100.7")
        for attempt in range(LOGIN_LIMIT + 2)
    ]
    assert codes == [401] * LOGIN_LIMIT + [429, 429]
    assert [login(url, email, password, "198.51.100.8") for url in urls] == [429, 429]


def test_a_device_spread_over_both_replicas_trips_at_the_limit(cluster: Cluster) -> None:
    with cluster.server.admin() as admin:
        token = register_camera(admin, SITE, "cam-limit", 60)
    auth = {"Authorization": f"Bearer {token}"}
    reports = history("cam-limit", INGEST_LIMIT + 4)
    codes = [
        httpx.post(
            f"{cluster.replicas[i % 2].url}{REPORTS}", json=body(report), headers=auth, timeout=30
        ).status_code
        for i, report in enumerate(reports)
    ]
    assert codes == [200] * INGEST_LIMIT + [429] * 4


def test_one_batch_posted_to_both_replicas_at_once_is_stored_once(cluster: Cluster) -> None:
    """Five rounds of 30 reports, each batch sent to both replicas at the same moment: both
    answer 200, every report is created by exactly one of them and a duplicate in the other,
    and the stored counts are those of one copy, read back alike through either replica."""
    with cluster.server.admin() as admin:
        token = register_camera(admin, SITE, "cam-twice", 60)
    auth = {"Authorization": f"Bearer {token}"}
    reports = history("cam-twice", 150)
    for first in range(0, len(reports), 30):
        batch = body(*reports[first : first + 30])
        together = threading.Barrier(2)

        def send(
            replica: Replica, batch: dict[str, Any] = batch, together: threading.Barrier = together
        ) -> httpx.Response:
            together.wait()
            return httpx.post(f"{replica.url}{REPORTS}", json=batch, headers=auth, timeout=60)

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(send, cluster.replicas))
        assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
        results = [answer.json() for answer in answers]
        assert sum(result["created"] for result in results) == 30
        assert sum(result["duplicates"] for result in results) == 30
        assert all(result["conflicts"] == 0 for result in results)
        outcomes = zip(*(result["results"] for result in results), strict=True)
        assert all(
            sorted(o["status"] for o in pair) == ["created", "duplicate"] for pair in outcomes
        )

    expected = sum(row.count for report in reports for row in report.counts)
    window = {
        "site": SITE,
        "from": START.isoformat(),
        "to": (START + timedelta(days=1)).isoformat(),
    }
    totals = []
    for replica in cluster.replicas:
        with httpx.Client(
            base_url=replica.url, headers={"Authorization": f"Bearer {cluster.server.admin_token}"}
        ) as admin:
            summary = admin.get("/api/v1/counts/summary", params=window | {"camera": "cam-twice"})
            assert summary.status_code == 200, summary.text
            totals.append(summary.json()["total"])
    assert totals == [expected, expected]
    plain_url = cluster.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain_url) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM interval_reports WHERE camera_id = %s", ("cam-twice",)
        ).fetchone()
    assert stored == (len(reports),)


def test_the_proxy_spreads_requests_and_counts_each_client_once(cluster: Cluster) -> None:
    """Through docker/Caddyfile: both replicas serve; a client rotating X-Forwarded-For is
    still counted under the one address the proxy saw; with one replica down the other
    takes every request."""
    upstreams = [f"127.0.0.1:{replica.port}" for replica in cluster.replicas]
    with running_caddy(upstreams, cluster.workdir) as proxy:
        probe = uuid.uuid4().hex
        for _ in range(10):
            assert httpx.get(f"{proxy}/healthz", params={"probe": probe}).status_code == 200
        served = [
            replica.log.read_text(errors="replace").count(probe) for replica in cluster.replicas
        ]
        assert sum(served) == 10
        assert min(served) >= 3, served

        codes = [
            login(proxy, f"nobody-{n}@example.org", "a wrong guess", f"203.0.113.{n}")
            for n in range(LOGIN_LIMIT + 1)
        ]
        assert codes == [401] * LOGIN_LIMIT + [429]

        down = cluster.replicas[1]
        stop(down.process)
        try:
            answers = [httpx.get(f"{proxy}/api/v1/meta", timeout=30) for _ in range(6)]
            assert [answer.status_code for answer in answers] == [200] * 6
        finally:
            cluster.replicas[1] = start_replica(cluster.server.env, cluster.workdir, down.port)
