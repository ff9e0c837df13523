"""The uplink protocol: every byte sent is captured and checked against the wire contract."""

from __future__ import annotations

import logging
import random
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import Heartbeat, IntervalReport, ReportBatch
from contract.site import ConfigError
from contract.site import Uplink as UplinkConfig
from detector.backoff import Backoff
from detector.config import TOKEN_ENV
from detector.outbox import DeadLetter, Outbox
from detector.uplink import ReportUplink, load_device_token
from tests.support.report_api import REFUSE, Reply, ReportApi
from tests.support.reports import BASE_START, make_report
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(30)
TOKEN = "device-token-0123456789abcdef"
SOON_AFTER_BASE = BASE_START.timestamp() + 3600
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM6")
LONG_BASE64 = re.compile(rb"[A-Za-z0-9+/=]{120,}")


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", clock=lambda: SOON_AFTER_BASE)
    yield box
    box.close()


def no_jitter(initial_s: float = 1.0, max_s: float = 8.0) -> Backoff:
    return Backoff(initial_s, max_s, jitter=0.0)


def make_uplink(outbox: Outbox, api: ReportApi, batch_size: int = 100) -> ReportUplink:
    return ReportUplink(
        outbox,
        httpx.Client(transport=api.mock_transport()),
        api_url="https://api.example.test/",
        token=TOKEN,
        batch_size=batch_size,
        backoff=no_jitter(),
        auth_backoff=no_jitter(300.0, 3600.0),
    )


def fill(outbox: Outbox, count: int) -> list[IntervalReport]:
    reports = [make_report(m) for m in range(count)]
    for report in reports:
        outbox.put(report)
    return reports


def drain(uplink: ReportUplink, outbox: Outbox, max_calls: int = 100) -> list[float]:
    """Call deliver_once until the outbox is empty; the delays it asked for."""
    delays: list[float] = []
    while outbox.backlog() and len(delays) < max_calls:
        delays.append(uplink.deliver_once())
    assert outbox.backlog() == 0
    return delays


def sizes(api: ReportApi) -> list[int]:
    return [len(r.batch().reports) for r in api.report_requests()]


def blame(report: IntervalReport) -> dict[str, object]:
    return {"detail": {"report_id": report.report_id, "message": "kept another version"}}


# --- device token ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_token", "file_text", "expected"),
    [
        ("from-env", None, "from-env"),
        ("from-env", "from-file", "from-env"),
        (None, "from-file\n", "from-file"),
        (None, "  padded-token  \n", "padded-token"),
    ],
)
def test_device_token_sources(
    tmp_path: Path, env_token: str | None, file_text: str | None, expected: str
) -> None:
    token_file = tmp_path / "token"
    if file_text is not None:
        token_file.write_text(file_text)
    environ = {TOKEN_ENV: env_token} if env_token is not None else {}
    config = UplinkConfig(token_file=token_file if file_text is not None else None)
    assert load_device_token(config, environ) == expected


@pytest.mark.parametrize(
    ("env_token", "file_text", "use_file", "message"),
    [
        (None, None, False, "no device token: set TALLY_DEVICE_TOKEN or uplink.token_file"),
        (None, None, True, "cannot read"),
        (None, "\n", True, "is empty"),
        ("", None, False, r"\$TALLY_DEVICE_TOKEN is empty"),
        ("two words", None, False, "printable ASCII without spaces"),
        (None, "tok\x00en", True, "printable ASCII without spaces"),
    ],
)
def test_device_token_errors_are_clear(
    tmp_path: Path, env_token: str | None, file_text: str | None, use_file: bool, message: str
) -> None:
    token_file = tmp_path / "token"
    if file_text is not None:
        token_file.write_text(file_text)
    environ = {TOKEN_ENV: env_token} if env_token is not None else {}
    config = UplinkConfig(token_file=token_file if use_file else None)
    with pytest.raises(ConfigError, match=message):
        load_device_token(config, environ)


# --- what goes on the wire ------------------------------------------------------------------


def test_batches_carry_only_contract_fields_oldest_first(outbox: Outbox) -> None:
    reports = fill(outbox, 150)
    api = ReportApi()
    uplink = make_uplink(outbox, api)
    assert drain(uplink, outbox) == [0.0, 0.0]
    assert sizes(api) == [100, 50]
    sent: list[IntervalReport] = []
    for request in api.report_requests():
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["content-type"] == "application/json"
        assert len(request.body) < 100 * 2048
        assert not any(magic in request.body for magic in IMAGE_MAGIC)
        assert not LONG_BASE64.search(request.body)
        batch = request.batch()
        assert ReportBatch.model_validate_json(batch.model_dump_json()) == batch
        sent.extend(batch.reports)
    assert sent == reports
    assert uplink.delivered == 150
    assert all(outbox.contains(r.report_id) for r in reports)


def test_heartbeat_is_posted_with_the_token(outbox: Outbox) -> None:
    api = ReportApi()
    heartbeat = Heartbeat(
        camera_id="cam-1",
        sent_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        uptime_s=3600,
        outbox_backlog=0,
        dropped_reports=0,
        streams=[],
        config_version=1,
    )
    assert make_uplink(outbox, api).send_heartbeat(heartbeat)
    (request,) = api.requests
    assert request.path == "/api/v1/heartbeat"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert Heartbeat.model_validate_json(request.body) == heartbeat


# --- response handling ----------------------------------------------------------------------


def test_conflict_acks_the_named_report_and_counts_it(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    reports = fill(outbox, 3)
    api = ReportApi([Reply(409, blame(reports[1]))])
    uplink = make_uplink(outbox, api)
    drain(uplink, outbox)
    assert sizes(api) == [3, 2]
    assert uplink.conflicts == 1
    assert set(api.stored) == {reports[0].report_id, reports[2].report_id}
    assert "different first version" in caplog.text


def test_invalid_report_named_by_fastapi_is_dead_lettered(outbox: Outbox) -> None:
    reports = fill(outbox, 4)
    error = {"detail": [{"loc": ["body", "reports", 2, "counts"], "msg": "bad", "type": "x"}]}
    api = ReportApi([Reply(422, error)])
    uplink = make_uplink(outbox, api)
    drain(uplink, outbox)
    assert uplink.dead_lettered == outbox.dead_lettered() == 1
    (letter,) = outbox.dead_letters()
    assert (letter.report_id, letter.status) == (reports[2].report_id, 422)
    assert letter.detail == "body.reports.2.counts: bad"
    assert set(api.stored) == {r.report_id for i, r in enumerate(reports) if i != 2}


@pytest.mark.parametrize(
    ("status", "dead_lettered"),
    [
        (400, True),
        (410, True),
        (422, True),
        (451, True),
        (401, False),  # the token: fix the config, the report is fine
        (403, False),
        (404, False),  # the URL
        (405, False),
        (408, False),  # transient
        (429, False),
        (500, False),
    ],
)
def test_a_rejection_about_the_report_dead_letters_it_once_and_anything_else_keeps_it(
    outbox: Outbox, status: int, dead_lettered: bool
) -> None:
    (report,) = fill(outbox, 1)
    api = ReportApi([Reply(status, {"detail": f"refused with {status}"})])
    uplink = make_uplink(outbox, api)
    delay = uplink.deliver_once()
    if dead_lettered:
        assert delay == 0.0
        assert outbox.dead_letters() == [
            DeadLetter(report.report_id, BASE_START, 60, status, f"refused with {status}")
        ]
        assert uplink.deliver_once() == 1.0, "nothing left to send: not retried"
        assert len(api.report_requests()) == 1
    else:
        assert delay > 0.0
        assert (outbox.backlog(), outbox.dead_lettered()) == (1, 0)
        drain(uplink, outbox)
        assert set(api.stored) == {report.report_id}


def test_an_unnamed_invalid_report_is_isolated_one_by_one(outbox: Outbox) -> None:
    reports = fill(outbox, 6)
    bad = reports[3].report_id

    def reject_batches_with_the_bad_report(batch: list[dict[str, object]]) -> Reply:
        return (
            Reply(400, {"detail": "invalid"})
            if bad in {r["report_id"] for r in batch}
            else Reply(201)
        )

    api = ReportApi(policy=reject_batches_with_the_bad_report)
    uplink = make_uplink(outbox, api, batch_size=6)
    drain(uplink, outbox)
    assert sizes(api) == [6, 1, 1, 1, 1, 1, 1]
    assert outbox.dead_lettered() == 1
    assert not outbox.pending(10)
    assert set(api.stored) == {r.report_id for r in reports} - {bad}


def test_too_large_halves_the_batch(outbox: Outbox) -> None:
    fill(outbox, 5)

    def at_most_two(batch: list[dict[str, object]]) -> Reply:
        return Reply(413) if len(batch) > 2 else Reply(201)

    api = ReportApi(policy=at_most_two)
    drain(make_uplink(outbox, api, batch_size=8), outbox)
    assert sizes(api)[:2] == [5, 2]
    assert len(api.stored) == 5
    assert outbox.dead_lettered() == 0


def test_refused_token_keeps_everything_and_waits_long(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fill(outbox, 3)
    api = ReportApi([Reply(401, {"detail": "bad token"}), Reply(403, {"detail": "revoked"})])
    uplink = make_uplink(outbox, api)
    assert [uplink.deliver_once(), uplink.deliver_once()] == [300.0, 600.0]
    assert outbox.backlog() == 3
    assert "refused this device's token" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(uplink)
    drain(uplink, outbox)
    assert len(api.stored) == 3


def test_transient_failures_back_off_exponentially(outbox: Outbox) -> None:
    fill(outbox, 2)
    script = [Reply(503), REFUSE, Reply(429, headers={"Retry-After": "7"}), Reply(500), Reply(201)]
    api = ReportApi([*script, Reply(502)])
    uplink = make_uplink(outbox, api, batch_size=1)
    delays = [uplink.deliver_once() for _ in range(6)]
    # 1, 2, max(4, Retry-After 7), 8 (cap), success, then the backoff starts again at 1.
    assert delays == [1.0, 2.0, 7.0, 8.0, 0.0, 1.0]
    assert outbox.backlog() == 1
    assert uplink.failures == 5


def test_backoff_jitter_stays_within_bounds_and_never_overflows() -> None:
    backoff = Backoff(0.5, 30.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(5000)]
    ceilings = [min(30.0, 0.5 * 2 ** min(i, 10)) for i in range(5000)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.5


class RecordingEvent(threading.Event):
    """A stop event whose waits are recorded instead of slept; stops when ``done()``."""

    def __init__(self, done: Iterator[bool]) -> None:
        super().__init__()
        self.waits: list[float] = []
        self._done = done

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        if next(self._done):
            self.set()
        return self.is_set()


def test_run_forever_backs_off_then_delivers_and_heartbeats(outbox: Outbox) -> None:
    fill(outbox, 3)
    api = ReportApi([Reply(500), REFUSE, Reply(503)])
    uplink = make_uplink(outbox, api)
    heartbeats = 0

    def heartbeat() -> Heartbeat:
        nonlocal heartbeats
        heartbeats += 1
        return Heartbeat(
            camera_id="cam-1",
            sent_at=datetime.now(UTC),
            uptime_s=1,
            outbox_backlog=outbox.backlog(),
            dropped_reports=0,
            streams=[],
            config_version=1,
        )

    stop = RecordingEvent(iter(lambda: outbox.backlog() == 0, None))
    uplink.run_forever(stop, heartbeat)
    assert stop.waits == [1.0, 2.0, 4.0, 0.0]
    assert heartbeats == 1
    assert len(api.stored) == 3


# --- at-least-once --------------------------------------------------------------------------


def test_at_least_once_through_a_real_server_that_fails_at_first(outbox: Outbox) -> None:
    reports = fill(outbox, 12)
    failures = [Reply(503), REFUSE, Reply(500, store=True), Reply(502)]  # one lost response
    api = ReportApi(failures)
    stop = threading.Event()
    with api.serve() as base_url, httpx.Client(timeout=5) as client:
        uplink = ReportUplink(
            outbox,
            client,
            api_url=base_url,
            token=TOKEN,
            batch_size=5,
            backoff=Backoff(0.01, 0.05),
            idle_poll_s=0.01,
        )
        worker = threading.Thread(target=uplink.run_forever, args=(stop,))
        worker.start()
        try:
            wait_until(lambda: outbox.backlog() == 0, 10, "every report delivered")
        finally:
            stop.set()
            worker.join(5)
    assert outbox.backlog() == 0
    assert set(api.stored) == {r.report_id for r in reports}
    assert all(api.stored[r.report_id] == r.model_dump(mode="json") for r in reports)
    assert max(api.times_stored.values()) == 2  # the lost response was resent: deduped by id


API_BEHAVIOUR = st.sampled_from(["ok", "error", "refuse", "conflict", "invalid", "unnamed", "big"])
STEP = st.one_of(
    st.integers(0, 30).map(lambda minute: ("put", minute)),
    API_BEHAVIOUR.map(lambda behaviour: ("send", behaviour)),
)


class ScriptedApi:
    """Answers each request with the next drawn behaviour and remembers what it settled."""

    def __init__(self) -> None:
        self.behaviours: list[str] = []
        self.rejected: set[str] = set()
        self.conflicted: set[str] = set()

    def reply(self, batch: list[dict[str, object]]) -> Reply | None:
        behaviour = self.behaviours.pop(0) if self.behaviours else "ok"
        first = str(batch[0]["report_id"])
        single = len(batch) == 1
        if behaviour == "conflict":
            self.conflicted.add(first)
            return Reply(409, {"detail": {"report_id": first}})
        if behaviour == "invalid" or (behaviour in ("unnamed", "big") and single):
            self.rejected.add(first)
        replies = {
            "ok": Reply(201),
            "error": Reply(500),
            "refuse": REFUSE,
            "invalid": Reply(422, {"report_id": first}),
            "unnamed": Reply(422),
            "big": Reply(413),
        }
        return replies[behaviour]


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(STEP, max_size=40))
def test_outbox_and_uplink_never_lose_or_duplicate(steps: list[tuple[str, object]]) -> None:
    """Any interleaving of puts and API answers: each report ends stored exactly once on the
    API, kept there in another version (409), or dead-lettered; none is lost or resent."""
    scripted = ScriptedApi()
    api = ReportApi(policy=scripted.reply)
    with tempfile.TemporaryDirectory() as folder:
        outbox = Outbox(Path(folder) / "outbox.db", clock=lambda: SOON_AFTER_BASE)
        uplink = make_uplink(outbox, api, batch_size=4)
        accepted: set[str] = set()
        for kind, value in steps:
            if kind == "put":
                report = make_report(int(str(value)))
                if outbox.put(report):
                    accepted.add(report.report_id)
            else:
                scripted.behaviours.append(str(value))
                uplink.deliver_once()
        scripted.behaviours.clear()
        drain(uplink, outbox)
        stored = set(api.stored)
        assert stored | scripted.rejected | scripted.conflicted == accepted
        assert len(stored) + len(scripted.rejected) + len(scripted.conflicted) == len(accepted)
        assert set(api.times_stored.values()) <= {1}
        assert outbox.dead_lettered() == uplink.dead_lettered == len(scripted.rejected)
        assert uplink.conflicts == len(scripted.conflicted)
        outbox.close()
