"""Durable SQLite outbox of interval reports waiting for delivery.

Every report lives in exactly one place: ``pending`` until the API has it, then
``delivered`` (ids only, kept ``delivered_retention_s`` so a restarted worker knows an
interval was already reported), ``dead_letter`` if the API rejected it as invalid, or
counted as dropped when a full outbox had to make room. Nothing is lost silently: drops
are counted persistently and handed to the next report via ``take_dropped()``.
WAL with ``synchronous=FULL`` makes a returned ``put`` survive ``kill -9`` and power loss.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from contract import IntervalReport

logger = logging.getLogger(__name__)

DELIVERED_RETENTION_S = 7 * 86400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL UNIQUE,
    interval_start INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_order ON pending (interval_start, seq);
CREATE TABLE IF NOT EXISTS delivered (
    report_id TEXT PRIMARY KEY,
    interval_start INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS delivered_age ON delivered (interval_start);
CREATE TABLE IF NOT EXISTS dead_letter (
    report_id TEXT PRIMARY KEY,
    interval_start INTEGER NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO counters VALUES ('dropped_total', 0), ('dropped_unreported', 0);
"""
_MAX_REASON_CHARS = 1000


class OutboxError(Exception):
    """The outbox could not be read or written (disk full, I/O error, corrupt file)."""


class Outbox:
    """A bounded, durable report queue.

    Thread-safe: one connection behind a lock, as the uplink reads while the pipeline writes.
    """

    def __init__(
        self,
        path: Path,
        max_reports: int = 100_000,
        *,
        delivered_retention_s: float = DELIVERED_RETENTION_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_reports < 1:
            raise ValueError("max_reports must be at least 1")
        self.path = path
        self.max_reports = max_reports
        self._retention_s = delivered_retention_s
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {path}: cannot open: {exc}") from exc
        self._run_script(_SCHEMA)

    def put(self, report: IntervalReport) -> bool:
        """Queue a report; ``False`` if its id is already pending, delivered or quarantined."""
        with self._transaction() as db:
            if self._known(db, report.report_id):
                return False
            db.execute(
                "INSERT INTO pending (report_id, interval_start, body) VALUES (?, ?, ?)",
                (report.report_id, _epoch(report), report.model_dump_json()),
            )
            self._drop_overflow(db)
            return True

    def pending(self, limit: int) -> list[IntervalReport]:
        """Up to ``limit`` waiting reports, oldest interval first.

        A stored report that no longer validates (say, written under an older contract) is
        moved to the dead-letter table rather than blocking delivery of all the others.
        """
        reports = []
        with self._transaction() as db:
            rows = db.execute(
                "SELECT report_id, body FROM pending ORDER BY interval_start, seq LIMIT ?",
                (limit,),
            ).fetchall()
            for report_id, body in rows:
                try:
                    reports.append(IntervalReport.model_validate_json(body))
                except ValidationError as exc:
                    reason = (
                        f"stored report does not match the contract ({exc.error_count()} errors)"
                    )
                    logger.error("outbox %s: report %s: %s", self.path, report_id, reason)
                    self._move_to_dead_letter(db, report_id, reason)
        return reports

    def ack(self, report_ids: Iterable[str]) -> int:
        """Mark reports delivered; returns how many were pending. Unknown ids are ignored."""
        moved = 0
        with self._transaction() as db:
            for report_id in report_ids:
                moved += db.execute(
                    "INSERT OR IGNORE INTO delivered (report_id, interval_start) "
                    "SELECT report_id, interval_start FROM pending WHERE report_id = ?",
                    (report_id,),
                ).rowcount
                db.execute("DELETE FROM pending WHERE report_id = ?", (report_id,))
            db.execute(
                "DELETE FROM delivered WHERE interval_start < ?",
                (self._clock() - self._retention_s,),
            )
        return moved

    def quarantine(self, report_id: str, reason: str) -> bool:
        """Move a report the API rejected as invalid out of the queue, keeping it for people."""
        with self._transaction() as db:
            return self._move_to_dead_letter(db, report_id, reason)

    def contains(self, report_id: str) -> bool:
        """Whether this interval was already queued, delivered or quarantined."""
        with self._transaction() as db:
            return self._known(db, report_id)

    def backlog(self) -> int:
        """Reports waiting for delivery."""
        return self._count("SELECT COUNT(*) FROM pending")

    def quarantined(self) -> int:
        """Reports in the dead-letter table."""
        return self._count("SELECT COUNT(*) FROM dead_letter")

    def dropped_total(self) -> int:
        """Reports ever dropped from a full outbox."""
        return self._count("SELECT value FROM counters WHERE name = 'dropped_total'")

    def take_dropped(self) -> int:
        """Drops not yet reported, now marked reported: put the result in the next report."""
        with self._transaction() as db:
            (count,) = db.execute(
                "SELECT value FROM counters WHERE name = 'dropped_unreported'"
            ).fetchone()
            db.execute("UPDATE counters SET value = 0 WHERE name = 'dropped_unreported'")
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r}, max_reports={self.max_reports})"

    def _drop_overflow(self, db: sqlite3.Connection) -> None:
        """Drop the oldest pending reports beyond ``max_reports`` and count them."""
        dropped = db.execute(
            "DELETE FROM pending WHERE seq IN (SELECT seq FROM pending "
            "ORDER BY interval_start, seq LIMIT max(0, (SELECT COUNT(*) FROM pending) - ?))",
            (self.max_reports,),
        ).rowcount
        if dropped:
            db.execute(
                "UPDATE counters SET value = value + ? "
                "WHERE name IN ('dropped_total', 'dropped_unreported')",
                (dropped,),
            )

    def _move_to_dead_letter(self, db: sqlite3.Connection, report_id: str, reason: str) -> bool:
        moved = db.execute(
            "INSERT OR IGNORE INTO dead_letter "
            "SELECT report_id, interval_start, body, ?, ? FROM pending WHERE report_id = ?",
            (reason[:_MAX_REASON_CHARS], self._clock(), report_id),
        ).rowcount
        db.execute("DELETE FROM pending WHERE report_id = ?", (report_id,))
        return bool(moved)

    @staticmethod
    def _known(db: sqlite3.Connection, report_id: str) -> bool:
        row = db.execute(
            "SELECT EXISTS (SELECT 1 FROM pending WHERE report_id = ?1) "
            "OR EXISTS (SELECT 1 FROM delivered WHERE report_id = ?1) "
            "OR EXISTS (SELECT 1 FROM dead_letter WHERE report_id = ?1)",
            (report_id,),
        ).fetchone()
        return bool(row[0])

    def _count(self, query: str) -> int:
        with self._transaction() as db:
            return int(db.execute(query).fetchone()[0])

    def _run_script(self, script: str) -> None:
        with self._lock:
            try:
                self._db.executescript(script)
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self.path}: cannot create tables: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One locked, immediate transaction; any SQLite failure becomes a clear OutboxError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox {self.path}: {exc}") from exc


def _epoch(report: IntervalReport) -> int:
    return int(report.interval_start.timestamp())
