"""Durable SQLite outbox of interval reports waiting for delivery.

Every report lives in exactly one place: ``pending`` until the API has it, then
``delivered`` (ids only, kept ``delivered_retention_s`` so a restarted worker knows an
interval was already reported), ``dead_letter`` if the API rejected it as invalid (with the
HTTP status and the API's reason, until a person re-sends or drops it), or counted as dropped
when a full outbox had to make room or a person dropped a dead letter. Nothing is lost
silently: drops are counted persistently and handed to the next report via ``take_dropped()``.
WAL with ``synchronous=FULL`` makes a returned ``put`` survive ``kill -9`` and power loss.
Dead letters hold the report as queued (counts and labels, never imagery) and the reason.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
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
    quarantined_at REAL NOT NULL,
    status INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO counters VALUES
    ('dropped_total', 0), ('dropped_unreported', 0), ('reported_until', 0);
"""
_ADDED_COLUMNS = {"dead_letter": {"status": "INTEGER"}}
"""Columns newer than the oldest outbox files in the field; added when such a file is opened."""
_MAX_REASON_CHARS = 1000


class OutboxError(Exception):
    """The outbox could not be read or written (disk full, I/O error, corrupt file)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What a person needs to decide about a rejected report; never the report's contents."""

    report_id: str
    interval_start: datetime
    interval_seconds: int | None
    status: int | None
    """HTTP status of the rejection; None when the worker itself set the report aside."""
    detail: str


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
        self._add_missing_columns()

    def put(self, report: IntervalReport) -> bool:
        """Queue a report; ``False`` if its id is already pending, delivered or dead-lettered."""
        with self._transaction() as db:
            if self._known(db, report.report_id):
                return False
            db.execute(
                "INSERT INTO pending (report_id, interval_start, body) VALUES (?, ?, ?)",
                (report.report_id, report.interval_start_s, report.model_dump_json()),
            )
            db.execute(
                "UPDATE counters SET value = max(value, ?) WHERE name = 'reported_until'",
                (report.interval_start_s + report.interval_seconds,),
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
                    self._move_to_dead_letter(db, report_id, None, reason)
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

    def reject(self, report_id: str, status: int | None, detail: str) -> bool:
        """Move a report the API rejected as invalid out of the queue, keeping it for people."""
        with self._transaction() as db:
            return self._move_to_dead_letter(db, report_id, status, detail)

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead-lettered report, oldest interval first."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT report_id, interval_start, body, status, reason FROM dead_letter "
                "ORDER BY interval_start, report_id"
            ).fetchall()
        return [
            DeadLetter(
                report_id,
                datetime.fromtimestamp(start, UTC),
                _interval_seconds(body),
                status,
                _printable(detail),
            )
            for report_id, start, body, status, detail in rows
        ]

    def resend(self, report_ids: Iterable[str] | None = None) -> int:
        """Move dead letters (all of them when ``report_ids`` is None) back to the queue, after
        whatever made the API reject them was fixed; returns how many moved."""
        with self._transaction() as db:
            selected = (
                [row[0] for row in db.execute("SELECT report_id FROM dead_letter")]
                if report_ids is None
                else list(report_ids)
            )
            moved = 0
            for report_id in selected:
                moved += db.execute(
                    "INSERT INTO pending (report_id, interval_start, body) "
                    "SELECT report_id, interval_start, body FROM dead_letter WHERE report_id = ?",
                    (report_id,),
                ).rowcount
                db.execute("DELETE FROM dead_letter WHERE report_id = ?", (report_id,))
            self._drop_overflow(db)
        return moved

    def drop_dead_letter(self, report_id: str) -> bool:
        """Delete one dead letter for good; it is counted as dropped, like an overflow."""
        with self._transaction() as db:
            dropped = db.execute(
                "DELETE FROM dead_letter WHERE report_id = ?", (report_id,)
            ).rowcount
            self._count_dropped(db, dropped)
        return bool(dropped)

    def contains(self, report_id: str) -> bool:
        """Whether this interval was already queued, delivered or dead-lettered."""
        with self._transaction() as db:
            return self._known(db, report_id)

    def reported_until(self) -> int:
        """End (epoch seconds) of the latest interval ever queued here, by this run or an
        earlier one: a report starting before it would cover that time twice."""
        return self._count("SELECT value FROM counters WHERE name = 'reported_until'")

    def backlog(self) -> int:
        """Reports waiting for delivery."""
        return self._count("SELECT COUNT(*) FROM pending")

    def dead_lettered(self) -> int:
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
        self._count_dropped(db, dropped)

    @staticmethod
    def _count_dropped(db: sqlite3.Connection, dropped: int) -> None:
        if dropped:
            db.execute(
                "UPDATE counters SET value = value + ? "
                "WHERE name IN ('dropped_total', 'dropped_unreported')",
                (dropped,),
            )

    def _move_to_dead_letter(
        self, db: sqlite3.Connection, report_id: str, status: int | None, detail: str
    ) -> bool:
        moved = db.execute(
            "INSERT OR IGNORE INTO dead_letter "
            "(report_id, interval_start, body, reason, quarantined_at, status) "
            "SELECT report_id, interval_start, body, ?, ?, ? FROM pending WHERE report_id = ?",
            (detail[:_MAX_REASON_CHARS], self._clock(), status, report_id),
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

    def _add_missing_columns(self) -> None:
        with self._transaction() as db:
            for table, columns in _ADDED_COLUMNS.items():
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

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


def outbox_path(configured: Path, camera_id: str, cameras: int) -> Path:
    """One outbox per camera; a single-camera site uses the configured file as is."""
    if cameras == 1:
        return configured
    return configured.with_name(f"{configured.stem}-{camera_id}{configured.suffix}")


def _interval_seconds(body: str) -> int | None:
    """The length of a stored report, read leniently: a dead letter may not validate."""
    try:
        value = json.loads(body).get("interval_seconds")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _printable(text: str) -> str:
    """One line without control characters: the reason came from the network (or from an
    older worker) and is shown in a terminal."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
