"""Raw per-interval rows: monthly partitions on PostgreSQL, and retention on both databases.

On PostgreSQL the five raw tables (a report and its count, zone, movement and unmatched rows)
are range-partitioned by `interval_start_s` (migration 0008), one partition per UTC month and
table, named ``<table>_pYYYY_MM``, plus a ``<table>_default`` partition that catches a row of a
month without a partition: a report is never refused or lost for want of one. Partitions are
created ahead (at API start-up and by ``python -m api storage``, best run daily); creating one
for a month that has rows in the default partition moves them into it first.

Retention (``TALLY_RAW_RETENTION_DAYS``) drops whole months of raw rows on PostgreSQL once the
month ended before the cut-off, and deletes the older rows (the default partition's, and on
SQLite all of them) in small batches, each its own transaction, so ingest never waits long.
The rollups are other tables and stay: hourly and 15-minute series outlive the raw minutes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, TableClause, column, delete, select, text, tuple_
from sqlalchemy import table as sql_table
from sqlalchemy.exc import SQLAlchemyError

from api.settings import Settings

log = logging.getLogger(__name__)
# Every identifier put into SQL text here is one of RAW_TABLES or made of one and a Month.

RAW_TABLES = ("interval_reports", "count_rows", "zone_rows", "movement_rows", "unmatched_rows")
"""The report table first, then its rows' (which share its key, and have no foreign key)."""
MONTHS_AHEAD = 3
PARTITION_NAME = re.compile(r"_p(\d{4})_(\d{2})$")
LOCK_KEY = 0x7A11_0008
"""Advisory lock: API processes starting together create partitions one at a time."""
DELETE_BATCH = 5_000


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A UTC calendar month, the span of one partition."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def start_s(self) -> int:
        return int(datetime(self.year, self.month, 1, tzinfo=UTC).timestamp())

    @property
    def end_s(self) -> int:
        return self.next().start_s

    def partition(self, table: str) -> str:
        return f"{table}_p{self.year:04d}_{self.month:02d}"

    def through(self, last: Month) -> Iterator[Month]:
        """This month and every one after it up to `last`."""
        month = self
        while month <= last:
            yield month
            month = month.next()


@dataclass
class StorageReport:
    """What one maintenance run did (printed by ``python -m api storage``)."""

    partitioned: bool
    created: list[str] = field(default_factory=list)
    moved_from_default: int = 0
    dropped: list[str] = field(default_factory=list)
    deleted_reports: int = 0


def is_partitioned(connection: Connection) -> bool:
    """Whether `interval_reports` is a partitioned table (PostgreSQL after migration 0008)."""
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
            " WHERE c.relname = 'interval_reports' AND pg_table_is_visible(c.oid)"
        )
    ).first()
    return found is not None


def month_partitions(connection: Connection, table: str) -> dict[Month, str]:
    """The monthly partitions of `table` that exist, by month."""
    names = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE p.relname = :table AND pg_table_is_visible(p.oid)"
        ),
        {"table": table},
    ).scalars()
    found = {}
    for name in names:
        match = PARTITION_NAME.search(name)
        if match:
            found[Month(int(match.group(1)), int(match.group(2)))] = name
    return found


def create_month(connection: Connection, month: Month) -> int:
    """Partitions of every raw table for `month`; rows of that month in the default partitions
    move into them (how many reports moved is returned)."""
    bounds = {"low": month.start_s, "high": month.end_s}
    in_month = "interval_start_s >= :low AND interval_start_s < :high"
    moved = connection.execute(
        text(f"SELECT count(*) FROM interval_reports_default WHERE {in_month}"),  # noqa: S608
        bounds,
    ).scalar_one()
    held = [f"moving_{table}" for table in RAW_TABLES]
    if moved:
        for table, temp in zip(RAW_TABLES, held, strict=True):
            connection.execute(text(f"CREATE TEMP TABLE {temp} (LIKE {table}) ON COMMIT DROP"))
            connection.execute(
                text(
                    f"WITH moved AS (DELETE FROM {table}_default WHERE {in_month} RETURNING *)"  # noqa: S608
                    f" INSERT INTO {temp} SELECT * FROM moved"
                ),
                bounds,
            )
    for table in RAW_TABLES:
        connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {month.partition(table)} PARTITION OF {table}"
                f" FOR VALUES FROM ({month.start_s}) TO ({month.end_s})"
            )
        )
    if moved:
        for table, temp in zip(RAW_TABLES, held, strict=True):
            connection.execute(text(f"INSERT INTO {table} SELECT * FROM {temp}"))  # noqa: S608
            connection.execute(text(f"DROP TABLE {temp}"))
    return int(moved)


def ensure_partitions(
    connection: Connection, first: Month, last: Month, *, rehome: bool = False
) -> StorageReport:
    """Partitions for every month from `first` to `last` and, with `rehome`, for every month
    the default partitions hold rows of (those missing are created, and filled from there)."""
    report = StorageReport(partitioned=is_partitioned(connection))
    if not report.partitioned:
        return report
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    existing = month_partitions(connection, RAW_TABLES[0])
    wanted = set(first.through(last)) | set(months_in_default(connection) if rehome else ())
    for month in sorted(wanted):
        if month not in existing:
            report.moved_from_default += create_month(connection, month)
            report.created += [month.partition(table) for table in RAW_TABLES]
    return report


def upcoming_months(now: datetime) -> tuple[Month, Month]:
    """Last month (late reports), this one and MONTHS_AHEAD more. Older reports, which ingest
    accepts up to ``ingest_max_age_days``, land in the default partitions until `maintain`
    gives their months partitions of their own."""
    first = Month.of(datetime(now.year, now.month, 1, tzinfo=UTC) - timedelta(days=1))
    last = Month.of(now)
    for _ in range(MONTHS_AHEAD):
        last = last.next()
    return first, last


def months_in_default(connection: Connection) -> list[Month]:
    """The months of the rows that the default partition holds."""
    found = connection.execute(
        text(
            "SELECT DISTINCT extract(year FROM t)::int, extract(month FROM t)::int FROM"
            " (SELECT to_timestamp(interval_start_s) AT TIME ZONE 'UTC' AS t"
            " FROM interval_reports_default) AS starts"
        )
    ).all()
    return sorted(Month(year, month) for year, month in found)


def retention_cutoff(settings: Settings, now: datetime) -> int | None:
    """Raw rows starting before this (epoch s) go; None when kept forever."""
    if not settings.raw_retention_days:
        return None
    return int((now - timedelta(days=settings.raw_retention_days)).timestamp())


def drop_months_before(connection: Connection, cutoff_s: int) -> list[str]:
    """Drop the monthly partitions, of every raw table, that end at or before `cutoff_s`."""
    dropped = []
    for table in RAW_TABLES:
        for month, name in sorted(month_partitions(connection, table).items()):
            if month.end_s <= cutoff_s:
                connection.execute(text(f"DROP TABLE {name}"))
                dropped.append(name)
    return dropped


def delete_reports_before(
    engine: Engine, cutoff_s: int, batch: int = DELETE_BATCH, *, default_only: bool = False
) -> int:
    """Delete reports that start before `cutoff_s` with their rows, `batch` reports at a
    time, each batch its own transaction; how many went. `default_only`: those in
    PostgreSQL's default partitions (the monthly ones go whole, and the month holding the
    cut-off waits until it all is past it, rather than being deleted row by row every day)."""
    tables = [raw_table(name, default_only) for name in RAW_TABLES]
    reports = tables[0]
    oldest = (
        select(reports.c.camera_id, reports.c.interval_start_s)
        .where(reports.c.interval_start_s < cutoff_s)
        .limit(batch)
    )
    deleted = 0
    while True:
        with engine.begin() as connection:
            keys = [tuple(key) for key in connection.execute(oldest)]
            if keys:
                for table in tables:
                    key = tuple_(table.c.camera_id, table.c.interval_start_s)
                    connection.execute(delete(table).where(key.in_(keys)))
        deleted += len(keys)
        if len(keys) < batch:
            return deleted


def raw_table(name: str, default_only: bool) -> TableClause:
    """A raw table (or its default partition) by the key its rows share with their report."""
    return sql_table(
        f"{name}_default" if default_only else name,
        column("camera_id"),
        column("interval_start_s"),
    )


def maintain(engine: Engine, settings: Settings, now: datetime | None = None) -> StorageReport:
    """Partitions ahead (PostgreSQL) and retention (both): what `storage` and start-up run."""
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        report = ensure_partitions(connection, *upcoming_months(now), rehome=True)
    cutoff = retention_cutoff(settings, now)
    if cutoff is not None:
        if report.partitioned:
            with engine.begin() as connection:
                report.dropped = drop_months_before(connection, cutoff)
        report.deleted_reports = delete_reports_before(
            engine, cutoff, default_only=report.partitioned
        )
    if report.created or report.dropped or report.deleted_reports:
        log.info(
            "raw storage: %d partitions created, %d dropped, %d reports deleted",
            len(report.created),
            len(report.dropped),
            report.deleted_reports,
        )
    return report


def prepare_at_start(engine: Engine) -> None:
    """Partitions ahead when the API starts; a database that is down or not migrated yet only
    delays that to the next start or `storage` run (ingest still stores everything: the
    default partitions take it)."""
    try:
        with engine.begin() as connection:
            ensure_partitions(connection, *upcoming_months(datetime.now(UTC)))
    except SQLAlchemyError as exc:
        log.warning("raw partitions not prepared at start-up: %s", type(exc).__name__)
