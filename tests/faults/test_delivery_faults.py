"""Delivery under faults, against the real API process: nothing lost, nothing twice.

The worker side is the real outbox and uplink (detector.outbox, detector.uplink) fed with
contract reports, so no test here pays for the model. Each test prints its figures
(``FIGURE name=value``) for docs/deployment.md; run with ``-s`` to see them.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from contract import IntervalReport, ReportBatch
from detector.backoff import Backoff
from detector.outbox import Outbox
from detector.uplink import ReportUplink
from tests.faults.conftest import REPO, ApiProcess, register_camera, stored
from tests.support.databases import POSTGRES_ADMIN_URL
from tests.support.reports import make_report
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


def figure(name: str, value: float) -> None:
    print(f"FIGURE {name}={value:.3f}")


@contextmanager
def delivering(outbox: Outbox, api_url: str, token: str, batch: int = 10) -> Iterator[ReportUplink]:
    """The real uplink loop on a thread, with short backoff so tests stay quick."""
    uplink = ReportUplink(
        outbox,
        httpx.Client(timeout=5),
        api_url=api_url,
        token=token,
        batch_size=batch,
        backoff=Backoff(0.05, 0.5),
        idle_poll_s=0.05,
    )
    stop = threading.Event()
    thread = threading.Thread(target=uplink.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        yield uplink
    finally:
        stop.set()
        thread.join(timeout=10)
        uplink.close()


def assert_exactly_once(database_url: str, camera: str, reports: list[IntervalReport]) -> None:
    ids, total = stored(database_url, camera)
    assert len(ids) == len(set(ids)), "a report is stored twice"
    assert sorted(ids) == sorted(r.report_id for r in reports), "a report is missing"
    assert total == sum(row.count for r in reports for row in r.counts), "a count is doubled"
    figure("reports_lost", len(reports) - len(ids))
    figure("duplicates", len(ids) - len(set(ids)))


def test_api_down_then_back_delivers_every_report_once(
    tmp_path: Path, sqlite_url: str, api_on: list[ApiProcess]
) -> None:
    camera = register_camera(sqlite_url)
    api = ApiProcess(sqlite_url, tmp_path)
    api_on.append(api)
    outbox = Outbox(tmp_path / "outbox.db")
    reports = [make_report(m, camera_id=camera.id, cars=m % 7 + 1) for m in range(60)]
    for report in reports[:30]:
        outbox.put(report)
    with delivering(outbox, api.url, camera.token) as uplink:
        wait_until(lambda: uplink.failures >= 3, 10, "failed attempts while the API is down")
        assert outbox.backlog() == 30
        api.start()
        back = time.monotonic()
        wait_until(lambda: outbox.backlog() == 0, 30, "the backlog to drain")
        figure("api_down_recovery_s", time.monotonic() - back)
        api.stop(signal.SIGKILL)  # down again, hard, while the worker keeps producing
        for report in reports[30:]:
            outbox.put(report)
            time.sleep(0.01)
        api.start()
        back = time.monotonic()
        wait_until(lambda: outbox.backlog() == 0, 30, "the second backlog to drain")
        figure("api_killed_recovery_s", time.monotonic() - back)
    assert uplink.delivered == len(reports)
    assert_exactly_once(sqlite_url, camera.id, reports)


def run_child(
    outbox: Path, api: ApiProcess, token: str, camera: str, count: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.faults.outbox_child",
            str(outbox),
            api.url,
            token,
            camera,
            str(count),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_kill_9_keeps_the_outbox_and_resends_idempotently(
    tmp_path: Path, sqlite_url: str, api_on: list[ApiProcess]
) -> None:
    count = 120
    camera = register_camera(sqlite_url)
    api = ApiProcess(sqlite_url, tmp_path).start()
    api_on.append(api)
    path = tmp_path / "outbox.db"

    # 1. killed while queueing: every put that returned is on disk, the file is sound.
    child = run_child(path, api, camera.token, camera.id, count)
    assert child.stdout is not None
    acknowledged = 0
    while acknowledged < 40:
        acknowledged = int(child.stdout.readline().split()[1])
    child.send_signal(signal.SIGKILL)
    child.wait()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (pending,) = db.execute("SELECT COUNT(*) FROM pending").fetchone()
    assert acknowledged <= pending <= count

    # 2. killed while delivering (between the API's commit and the outbox's ack, sometimes).
    child = run_child(path, api, camera.token, camera.id, count)
    wait_until(lambda: len(stored(sqlite_url, camera.id)[0]) >= 30, 60, "some deliveries")
    child.send_signal(signal.SIGKILL)
    child.wait()

    # 3. restarted: it finishes, and nothing is stored twice.
    child = run_child(path, api, camera.token, camera.id, count)
    assert child.wait(timeout=60) == 0
    reports = [make_report(m, camera_id=camera.id, cars=m + 1) for m in range(count)]
    assert_exactly_once(sqlite_url, camera.id, reports)

    # 4. a full resend (a worker that lost its outbox) changes nothing.
    body = ReportBatch(reports=reports).model_dump_json()
    headers = {"Authorization": f"Bearer {camera.token}", "Content-Type": "application/json"}
    response = httpx.post(f"{api.url}/api/v1/reports", content=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert_exactly_once(sqlite_url, camera.id, reports)


def set_connections(database: str, allowed: bool) -> None:
    """Refuse or allow new connections to one database, and cut the open ones when refusing."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )


@pytest.mark.postgres
def test_database_restart_under_ingest_is_503_then_recovers(
    tmp_path: Path, postgres_url: str, api_on: list[ApiProcess]
) -> None:
    """The database goes away under load (backends cut, logins refused), then returns."""
    camera = register_camera(postgres_url)
    database = postgres_url.rsplit("/", 1)[1]
    api = ApiProcess(postgres_url, tmp_path).start()
    api_on.append(api)
    outbox = Outbox(tmp_path / "outbox.db")
    reports = [make_report(m, camera_id=camera.id, cars=m % 5 + 1) for m in range(300)]
    headers = {"Authorization": f"Bearer {camera.token}"}
    with delivering(outbox, api.url, camera.token, batch=5) as uplink:
        for report in reports[:150]:
            outbox.put(report)
        wait_until(lambda: uplink.delivered >= 20, 30, "ingest under way")
        set_connections(database, allowed=False)
        try:
            for report in reports[150:]:
                outbox.put(report)
            wait_until(lambda: uplink.failures >= 2, 30, "refused deliveries")
            outage = httpx.get(f"{api.url}/healthz", timeout=10)
            assert outage.status_code == 503
            assert outage.headers["Retry-After"]
            probe = ReportBatch(reports=[reports[-1]]).model_dump_json()
            refused = httpx.post(
                f"{api.url}/api/v1/reports",
                content=probe,
                headers={**headers, "Content-Type": "application/json"},
                timeout=10,
            )
            assert refused.status_code == 503, refused.text
        finally:
            set_connections(database, allowed=True)
        back = time.monotonic()
        wait_until(lambda: outbox.backlog() == 0, 60, "the backlog to drain")
        figure("db_restart_recovery_s", time.monotonic() - back)
    assert api.process is not None
    assert api.process.poll() is None, "the API must survive"
    assert_exactly_once(postgres_url, camera.id, reports)
