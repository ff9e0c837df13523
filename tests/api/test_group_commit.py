"""Group commit: batches that arrive together are stored together, and each is told exactly
what it would have been told alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from api_testkit import Registered, batch, make_report, register
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.coalesce import Coalescer
from api.models import Camera, CameraTraffic, CountRecord, IntervalReportRecord, LineRollup
from api.services.errors import DomainError
from api.services.ingest import AcceptWindow, Submission, ingest_batch, ingest_group
from contract import IntervalReport

T = TypeVar("T")
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def run_alone(work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` in a thread of its own: browser tests earlier in the session may leave an
    event loop running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


def at(minute: int) -> datetime:
    return START + timedelta(minutes=minute)


# -- the coalescer --------------------------------------------------------------------------


class Recorder:
    """A group's work that records each group; the first group waits until let go, so the
    test can submit more while it is in flight."""

    def __init__(self, fail_on: Callable[[int], bool] = lambda _n: False) -> None:
        self.groups: list[list[int]] = []
        self.first_started = threading.Event()
        self.go = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.first_started.set()
        self.go.wait(5)
        self.groups.append(list(items))
        return [ValueError(n) if self.fail_on(n) else n * 10 for n in items]


async def submit_during_first_write(
    coalescer: Coalescer[int, int], recorder: Recorder, items: list[int]
) -> list[Any]:
    """Submit the first item, then the others once its group is being written."""
    first = asyncio.ensure_future(coalescer.submit(items[0]))
    while not recorder.first_started.is_set():
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(coalescer.submit(n)) for n in items[1:]]
    await asyncio.sleep(0.01)
    recorder.go.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_batches_arriving_during_a_write_share_the_next_group() -> None:
    recorder = Recorder()
    coalescer: Coalescer[int, int] = Coalescer(recorder)
    outcomes = run_alone(submit_during_first_write(coalescer, recorder, list(range(6))))
    assert recorder.groups == [[0], [1, 2, 3, 4, 5]]
    assert outcomes == [0, 10, 20, 30, 40, 50]
    assert coalescer.groups == 2


@pytest.mark.parametrize(
    ("max_items", "max_weight", "groups"),
    [
        (64, 5000, [[0], [1, 2, 3, 4, 5, 6]]),
        (2, 5000, [[0], [1, 2], [3, 4], [5, 6]]),
        (64, 7, [[0], [1, 2, 3], [4], [5], [6]]),  # weights: item n weighs n
        (64, 1, [[0], [1], [2], [3], [4], [5], [6]]),  # an overweight item still goes alone
    ],
)
def test_a_group_keeps_to_its_bounds(
    max_items: int, max_weight: int, groups: list[list[int]]
) -> None:
    recorder = Recorder()
    coalescer: Coalescer[int, int] = Coalescer(
        recorder, max_items=max_items, max_weight=max_weight, weight=lambda n: n
    )
    run_alone(submit_during_first_write(coalescer, recorder, list(range(7))))
    assert recorder.groups == groups


def test_a_refused_item_fails_alone_and_a_failed_write_fails_its_whole_group() -> None:
    recorder = Recorder(fail_on=lambda n: n == 2)
    outcomes = run_alone(submit_during_first_write(Coalescer(recorder), recorder, [0, 1, 2, 3]))
    assert [type(o) for o in outcomes] == [int, int, ValueError, int]

    def broken(items: Sequence[int]) -> list[int]:
        raise ConnectionError("database down")

    async def two_groups() -> list[Any]:
        coalescer: Coalescer[int, int] = Coalescer(broken)
        waiting = (coalescer.submit(n) for n in range(3))
        return await asyncio.gather(*waiting, return_exceptions=True)

    assert [type(o) for o in run_alone(two_groups())] == [ConnectionError] * 3


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(1, 9), min_size=1, max_size=30),
    max_items=st.integers(1, 8),
    max_weight=st.integers(1, 20),
    waves=st.integers(1, 4),
)
def test_every_item_gets_its_own_outcome_in_order_and_within_bounds(
    weights: list[int], max_items: int, max_weight: int, waves: int
) -> None:
    groups: list[list[int]] = []

    def work(items: Sequence[int]) -> list[int | BaseException]:
        groups.append(list(items))
        return [KeyError(n) if weights[n] == 9 else -n for n in items]

    async def run() -> list[Any]:
        coalescer: Coalescer[int, int] = Coalescer(
            work, max_items=max_items, max_weight=max_weight, weight=lambda n: weights[n]
        )
        futures = []
        for n in range(len(weights)):
            futures.append(asyncio.ensure_future(coalescer.submit(n)))
            if n % waves == 0:
                await asyncio.sleep(0)
        return await asyncio.gather(*futures, return_exceptions=True)

    outcomes = run_alone(run())
    for n, outcome in enumerate(outcomes):
        if weights[n] == 9:
            assert isinstance(outcome, KeyError)
            assert outcome.args == (n,)
        else:
            assert outcome == -n
    assert [n for group in groups for n in group] == list(range(len(weights)))
    for group in groups:
        assert len(group) <= max_items
        assert len(group) == 1 or sum(weights[n] for n in group) <= max_weight


# -- a group stores what its batches store one by one ----------------------------------------


def snapshot(session: Session, cameras: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row a batch can add, for these cameras (times left out: they differ)."""
    reports = IntervalReportRecord
    return {
        "reports": [
            tuple(row)
            for row in session.execute(
                select(
                    reports.camera_id,
                    reports.interval_start_s,
                    reports.payload_sha256,
                    reports.wire_bytes,
                )
                .where(reports.camera_id.in_(cameras))
                .order_by(reports.camera_id, reports.interval_start_s)
            )
        ],
        "counts": [
            (r.camera_id, r.interval_start_s, r.line, r.direction, r.vehicle_class, r.count)
            for r in session.scalars(select(CountRecord).where(CountRecord.camera_id.in_(cameras)))
        ],
        "rollups": sorted(
            (r.granularity_s, r.camera_id, r.bucket_start_s, r.line, r.direction, r.n_car)
            for r in session.scalars(select(LineRollup).where(LineRollup.camera_id.in_(cameras)))
        ),
        "traffic": sorted(
            (r.camera_id, r.report_bytes, r.report_requests)
            for r in session.scalars(
                select(CameraTraffic).where(CameraTraffic.camera_id.in_(cameras))
            )
        ),
    }


def told(outcome: Any) -> Any:
    """What a request is told, comparable."""
    if isinstance(outcome, DomainError):
        return (type(outcome).__name__, str(outcome))
    return outcome.model_dump()


Plan = list[tuple[int, list[IntervalReport]]]
"""(index of the camera whose token posts, its batch)."""


def scenario(name: str, a: str, b: str) -> Plan:
    good = [make_report(a, at(0)), make_report(a, at(1))]
    other = [make_report(b, at(0))]
    plans: dict[str, Plan] = {
        "two cameras": [(0, good), (1, other)],
        "a bad line refuses its batch alone": [
            (0, good),
            (1, [make_report(b, at(3), {("nowhere", "northbound", "car"): 1})]),
        ],
        "one camera twice: resend, conflict and new": [
            (0, good),
            (
                0,
                [
                    good[0],
                    make_report(a, at(1), {("main", "southbound", "car"): 9}),
                    make_report(a, at(2)),
                ],
            ),
        ],
        "a token posting for another camera is refused alone": [(0, other), (1, other)],
        "a second length overlapping the first is refused": [
            (0, good),
            (0, [make_report(a, at(0), interval_seconds=900)]),
        ],
    }
    return plans[name]


SCENARIOS = [
    "two cameras",
    "a bad line refuses its batch alone",
    "one camera twice: resend, conflict and new",
    "a token posting for another camera is refused alone",
    "a second length overlapping the first is refused",
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_group_stores_and_answers_what_its_batches_one_by_one_would(
    app: FastAPI, name: str
) -> None:
    cameras = [register(app.state.settings).camera for _ in range(2)]
    plan = scenario(name, *cameras)
    window = AcceptWindow.from_settings(app.state.settings, datetime.now(UTC))

    def submissions(session: Session) -> list[Submission]:
        return [
            Submission(session.get_one(Camera, cameras[i]), reports, 1000 + 10 * n)
            for n, (i, reports) in enumerate(plan)
        ]

    def one_by_one(session: Session) -> list[Any]:
        outcomes: list[Any] = []
        for s in submissions(session):
            try:
                outcomes.append(ingest_batch(session, s.camera, s.reports, window, s.wire_bytes))
            except DomainError as exc:
                outcomes.append(exc)
        return outcomes

    seen = []
    for store in (one_by_one, lambda session: ingest_group(session, submissions(session), window)):
        with app.state.session_factory() as session:
            outcomes = store(session)
            seen.append(([told(o) for o in outcomes], snapshot(session, cameras)))
            session.rollback()
    alone, together = seen
    assert together == alone
    assert any(rows for rows in alone[1].values()), "the scenario stored nothing"


# -- over HTTP ------------------------------------------------------------------------------


async def post_all(app: FastAPI, posts: list[tuple[dict[str, str], dict[str, Any]]]) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tally") as client:
        responses = await asyncio.gather(
            *(client.post("/api/v1/reports", json=body, headers=auth) for auth, body in posts)
        )
    return [r.status_code for r in responses]


def test_concurrent_requests_share_transactions_and_each_gets_its_own_status(
    app: FastAPI,
) -> None:
    cameras: list[Registered] = [register(app.state.settings) for _ in range(12)]
    posts = [(reg.auth, batch(make_report(reg.camera, at(5)))) for reg in cameras]
    stranger = {"Authorization": "Bearer tally_0123456789abcdef_" + "x" * 43}
    posts.append((stranger, batch(make_report(cameras[0].camera, at(6)))))
    bad_line = make_report(cameras[1].camera, at(6), {("nowhere", "northbound", "car"): 1})
    posts.append((cameras[1].auth, batch(bad_line)))
    groups_before = app.state.ingest_queue.groups
    statuses = run_alone(post_all(app, posts))
    assert statuses == [200] * 12 + [401, 422]
    assert app.state.ingest_queue.groups - groups_before < len(posts) - 1
    with app.state.session_factory() as session:
        stored = session.scalars(
            select(IntervalReportRecord.camera_id).where(
                IntervalReportRecord.camera_id.in_([reg.camera for reg in cameras])
            )
        ).all()
    assert sorted(stored) == sorted(reg.camera for reg in cameras)
