"""The outbox on real SQLite files: order, idempotence, bounds, durability under kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from contract import IntervalReport
from detector.outbox import DeadLetter, Outbox, OutboxError
from tests.support.reports import BASE_START, make_report

pytestmark = pytest.mark.timeout(30)
REPO_ROOT = Path(__file__).resolve().parents[2]
SOON_AFTER_BASE = BASE_START.timestamp() + 3600


def open_outbox(path: Path, max_reports: int = 100) -> Outbox:
    return Outbox(path, max_reports, clock=lambda: SOON_AFTER_BASE)


def minutes(reports: list[IntervalReport]) -> list[int]:
    return [r.interval_start.minute for r in reports]


def test_pending_is_oldest_interval_first_and_put_is_idempotent(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.db")
    assert [outbox.put(make_report(m)) for m in (3, 1, 2)] == [True, True, True]
    assert outbox.put(make_report(1, cars=99)) is False  # same interval: same id
    assert minutes(outbox.pending(10)) == [1, 2, 3]
    assert minutes(outbox.pending(2)) == [1, 2]
    assert outbox.pending(10)[0] == make_report(1)
    assert outbox.backlog() == 3


def test_ack_moves_reports_to_delivered_and_remembers_them(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.db")
    for m in range(3):
        outbox.put(make_report(m))
    assert outbox.ack([make_report(0).report_id, make_report(1).report_id, "unknown"]) == 2
    assert minutes(outbox.pending(10)) == [2]
    assert outbox.contains(make_report(0).report_id)
    assert outbox.contains(make_report(2).report_id)
    assert not outbox.contains(make_report(9).report_id)
    assert outbox.put(make_report(0)) is False  # already delivered: never sent twice
    assert outbox.ack([make_report(0).report_id]) == 0


def test_delivered_ids_are_pruned_after_the_retention(tmp_path: Path) -> None:
    now = [SOON_AFTER_BASE]
    outbox = Outbox(tmp_path / "outbox.db", delivered_retention_s=86400, clock=lambda: now[0])
    outbox.put(make_report(0))
    outbox.ack([make_report(0).report_id])
    two_days_later = 2 * 24 * 60
    now[0] += 2 * 86400
    outbox.put(make_report(two_days_later))
    outbox.ack([make_report(two_days_later).report_id])
    assert not outbox.contains(make_report(0).report_id)
    assert outbox.contains(make_report(two_days_later).report_id)


def test_a_full_outbox_drops_the_oldest_and_counts_it_persistently(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = open_outbox(path, max_reports=3)
    for m in range(5):
        outbox.put(make_report(m))
    assert minutes(outbox.pending(10)) == [2, 3, 4]
    assert outbox.dropped_total() == 2
    outbox.close()

    reopened = open_outbox(path, max_reports=3)
    assert reopened.take_dropped() == 2
    assert reopened.take_dropped() == 0
    reopened.put(make_report(5))
    assert reopened.take_dropped() == 1
    assert reopened.dropped_total() == 3


def test_reject_moves_a_report_to_the_dead_letter_table(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.db")
    outbox.put(make_report(0))
    outbox.put(make_report(1))
    detail = "camera 'cam-1' has no line\n'x'\x1b[2J"  # shown in a terminal: one clean line
    assert outbox.reject(make_report(0).report_id, 422, detail)
    assert not outbox.reject(make_report(7).report_id, 422, "not pending")
    assert minutes(outbox.pending(10)) == [1]
    assert outbox.dead_lettered() == 1
    assert outbox.dead_letters() == [
        DeadLetter(
            make_report(0).report_id, BASE_START, 60, 422, "camera 'cam-1' has no line 'x' [2J"
        )
    ]
    assert outbox.contains(make_report(0).report_id)
    assert outbox.put(make_report(0)) is False


def test_a_stored_report_that_no_longer_validates_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = open_outbox(path)
    outbox.put(make_report(0))
    outbox.put(make_report(1))
    with sqlite3.connect(path) as other_process:
        other_process.execute(
            "UPDATE pending SET body = '{\"schema_version\": 0}' WHERE report_id = ?",
            (make_report(0).report_id,),
        )
    assert outbox.pending(10) == [make_report(1)]
    (letter,) = outbox.dead_letters()
    assert (letter.status, letter.interval_seconds) == (None, None)
    assert "does not match the contract" in letter.detail
    assert outbox.contains(make_report(0).report_id)


def test_resend_moves_dead_letters_back_in_interval_order(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.db")
    for m in range(4):
        outbox.put(make_report(m))
    for m in (2, 0, 3):
        outbox.reject(make_report(m).report_id, 422, "no line")
    assert outbox.resend([make_report(3).report_id, "unknown"]) == 1
    assert minutes(outbox.pending(10)) == [1, 3]
    assert outbox.resend() == 2
    assert minutes(outbox.pending(10)) == [0, 1, 2, 3]
    assert outbox.dead_letters() == []
    assert outbox.pending(10)[0] == make_report(0), "the report comes back unchanged"


def test_dropping_a_dead_letter_counts_it_as_dropped(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.db")
    outbox.put(make_report(0))
    outbox.reject(make_report(0).report_id, 422, "no line")
    assert not outbox.drop_dead_letter("unknown")
    assert outbox.drop_dead_letter(make_report(0).report_id)
    assert (outbox.dead_lettered(), outbox.backlog()) == (0, 0)
    assert (outbox.dropped_total(), outbox.take_dropped()) == (1, 1)


def test_an_outbox_file_from_before_dead_letter_statuses_opens(tmp_path: Path) -> None:
    """Workers in the field have outbox files whose dead-letter table has no status column."""
    path = tmp_path / "outbox.db"
    report = make_report(0)
    with sqlite3.connect(path) as old_worker:
        old_worker.execute(
            "CREATE TABLE dead_letter (report_id TEXT PRIMARY KEY, interval_start INTEGER NOT "
            "NULL, body TEXT NOT NULL, reason TEXT NOT NULL, quarantined_at REAL NOT NULL) "
            "WITHOUT ROWID"
        )
        old_worker.execute(
            "INSERT INTO dead_letter VALUES (?, ?, ?, 'HTTP 422: no line', 0)",
            (report.report_id, int(BASE_START.timestamp()), report.model_dump_json()),
        )
    outbox = open_outbox(path)
    assert [(d.report_id, d.status) for d in outbox.dead_letters()] == [(report.report_id, None)]
    outbox.put(make_report(1))
    assert outbox.reject(make_report(1).report_id, 400, "bad")
    assert outbox.resend() == 2
    assert minutes(outbox.pending(10)) == [0, 1]


def test_reports_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    child = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from detector.outbox import Outbox\n"
        "from tests.support.reports import make_report\n"
        f"outbox = Outbox(Path({str(path)!r}))\n"
        "for m in range(25):\n"
        "    outbox.put(make_report(m))\n"
        "print('stored', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "stored\n"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    assert process.returncode == -signal.SIGKILL

    reopened = open_outbox(path)
    assert reopened.backlog() == 25
    assert minutes(reopened.pending(100)) == list(range(25))


def test_disk_full_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.db")
    outbox.put(make_report(0))
    # SQLite's own page cap yields the very SQLITE_FULL error a full disk gives.
    (pages,) = outbox._db.execute("PRAGMA page_count").fetchone()
    outbox._db.execute(f"PRAGMA max_page_count = {pages}")

    def put_until_full() -> None:
        for m in range(1, 200):
            outbox.put(make_report(m, camera_id="cam-with-a-longer-name"))

    with pytest.raises(OutboxError, match="full"):
        put_until_full()
    assert outbox.contains(make_report(0).report_id)
    outbox._db.execute("PRAGMA max_page_count = 1000000")
    assert outbox.put(make_report(500))


def test_concurrent_pipeline_and_uplink_threads(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path / "outbox.db", max_reports=1000)
    delivered: list[str] = []
    finished = threading.Event()

    def pipeline() -> None:
        for m in range(60):
            outbox.put(make_report(m))
        finished.set()

    def uplink() -> None:
        while not (finished.is_set() and outbox.backlog() == 0):
            ids = [r.report_id for r in outbox.pending(7)]
            outbox.ack(ids)
            delivered.extend(ids)

    threads = [threading.Thread(target=pipeline), threading.Thread(target=uplink)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(delivered) == sorted(make_report(m).report_id for m in range(60))


MAX_REPORTS = 4


class OutboxAccounting(RuleBasedStateMachine):
    """Whatever happens (enqueue, deliver, reject, re-send, drop), every accepted report is in
    exactly one of pending, delivered and dead letters, or counted as dropped; pending never
    holds a duplicate."""

    def __init__(self) -> None:
        super().__init__()
        self.outbox = Outbox(Path(":memory:"), MAX_REPORTS, clock=lambda: SOON_AFTER_BASE)
        self.accepted = 0
        self.ever_accepted: set[str] = set()
        self.delivered = 0
        self.drops_taken = 0

    @rule(minute=st.integers(0, 15), camera=st.sampled_from(["cam-1", "cam-2"]))
    def put(self, minute: int, camera: str) -> None:
        report = make_report(minute, camera_id=camera)
        known = self.outbox.contains(report.report_id)
        accepted = self.outbox.put(report)
        assert accepted is not known
        self.accepted += accepted
        self.ever_accepted.add(report.report_id)

    @rule(count=st.integers(1, MAX_REPORTS))
    def ack_oldest(self, count: int) -> None:
        ids = [r.report_id for r in self.outbox.pending(count)]
        self.delivered += self.outbox.ack(ids + ids)

    @rule(minute=st.integers(0, 15))
    def ack_anything(self, minute: int) -> None:
        self.delivered += self.outbox.ack([make_report(minute).report_id])

    @precondition(lambda self: self.outbox.backlog() > 0)
    @rule()
    def reject_oldest(self) -> None:
        (oldest,) = self.outbox.pending(1)
        assert self.outbox.reject(oldest.report_id, 422, "invalid")
        assert not self.outbox.reject(oldest.report_id, 422, "twice")

    @precondition(lambda self: self.outbox.dead_lettered() > 0)
    @rule(pick=st.integers(0, 100), also_unknown=st.booleans())
    def resend_one(self, pick: int, also_unknown: bool) -> None:
        letters = self.outbox.dead_letters()
        chosen = letters[pick % len(letters)].report_id
        ids = [chosen, chosen, *([make_report(59).report_id] if also_unknown else [])]
        assert self.outbox.resend(ids) == 1

    @rule()
    def resend_all(self) -> None:
        letters = self.outbox.dead_lettered()
        assert self.outbox.resend() == letters

    @precondition(lambda self: self.outbox.dead_lettered() > 0)
    @rule()
    def drop_a_dead_letter(self) -> None:
        assert self.outbox.drop_dead_letter(self.outbox.dead_letters()[0].report_id)

    @rule()
    def take_dropped(self) -> None:
        self.drops_taken += self.outbox.take_dropped()

    @invariant()
    def nothing_lost_or_duplicated(self) -> None:
        pending_ids = [r.report_id for r in self.outbox.pending(100)]
        dead_ids = [d.report_id for d in self.outbox.dead_letters()]
        assert len(pending_ids) == len(set(pending_ids)) <= MAX_REPORTS
        assert len(pending_ids) == self.outbox.backlog()
        assert len(dead_ids) == self.outbox.dead_lettered()
        assert not set(pending_ids) & set(dead_ids)
        known = {i for i in self.ever_accepted if self.outbox.contains(i)}
        assert len(known) == len(pending_ids) + len(dead_ids) + self.delivered, "in two places"
        accounted = len(pending_ids) + self.delivered + len(dead_ids) + self.outbox.dropped_total()
        assert accounted == self.accepted
        assert self.drops_taken <= self.outbox.dropped_total()


OutboxAccounting.TestCase.settings = settings(
    max_examples=80, stateful_step_count=30, deadline=None
)
test_outbox_accounting = OutboxAccounting.TestCase
