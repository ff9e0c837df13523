"""The uplink counts the request-body bytes it sent, as httpx encoded them, by outcome."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from contract import Heartbeat
from detector.backoff import Backoff
from detector.outbox import Outbox
from detector.uplink import ReportUplink
from tests.support.reports import BASE_START, make_report

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", clock=lambda: BASE_START.timestamp() + 3600)
    yield box
    box.close()


def uplink_answering(outbox: Outbox, statuses: list[int], seen: list[bytes]) -> ReportUplink:
    """An uplink whose API answers each request with the next status; bodies land in `seen`."""
    answers = iter(statuses)

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        status = next(answers)
        if status == 0:
            raise httpx.ConnectError("no route", request=request)
        return httpx.Response(status, json={"detail": "scripted"})

    return ReportUplink(
        outbox,
        httpx.Client(transport=httpx.MockTransport(api)),
        api_url="https://api.example.test",
        token="device-token-0123456789abcdef",
        backoff=Backoff(1.0, 8.0, jitter=0.0),
    )


def heartbeat() -> Heartbeat:
    return Heartbeat(
        camera_id="cam-1",
        sent_at=datetime.now(UTC),
        uptime_s=1.0,
        outbox_backlog=0,
        dropped_reports=0,
        streams=[],
        config_version=1,
    )


@pytest.mark.parametrize(
    ("status", "accepted"),
    [(200, True), (409, True), (422, False), (500, False), (401, False), (0, False)],
    ids=[
        "stored",
        "conflict-stores-new-ones",
        "refused",
        "server-error",
        "bad-token",
        "no-network",
    ],
)
def test_report_bytes_count_as_accepted_only_when_the_api_stored_them(
    outbox: Outbox, status: int, accepted: bool
) -> None:
    outbox.put(make_report(0))
    outbox.put(make_report(1))
    seen: list[bytes] = []
    uplink = uplink_answering(outbox, [status], seen)
    uplink.deliver_once()
    (body,) = seen
    wire = uplink.wire_bytes
    answered = status != 0
    assert (wire.sent, wire.requests) == ((len(body), 1) if answered else (0, 0))
    assert wire.accepted_reports == (len(body) if accepted else 0)
    assert wire.accepted_heartbeats == 0


def test_heartbeat_bytes_are_counted_apart_from_reports(outbox: Outbox) -> None:
    seen: list[bytes] = []
    uplink = uplink_answering(outbox, [200, 503], seen)
    assert uplink.send_heartbeat(heartbeat())
    assert not uplink.send_heartbeat(heartbeat())
    wire = uplink.wire_bytes
    assert wire.accepted_heartbeats == len(seen[0])
    assert wire.sent == len(seen[0]) + len(seen[1])
    assert wire.accepted == wire.accepted_heartbeats
