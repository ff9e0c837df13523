"""SQL functions the filters need whose spelling differs between SQLite and PostgreSQL.

Traffic times are epoch seconds (BIGINT), so hours, minutes and days are arithmetic; only the
calendar (year, month, day of month) and the epoch of an audit timestamp need the database's
own functions.
"""

from __future__ import annotations

from typing import Any

from odata_query.sqlalchemy import functions_ext
from sqlalchemy import BigInteger, Integer, TypeDecorator
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

CALENDAR_PARTS = {"year": "%Y", "month": "%m", "day": "%d"}


class EpochSeconds(TypeDecorator[int]):
    """Seconds since 1970 (UTC): the type that marks a value as a moment in filters."""

    impl = BigInteger
    cache_ok = True


EPOCH = EpochSeconds()


class calendar_part(FunctionElement[int]):  # noqa: N801 - SQL function names are lower case
    """The UTC year, month or day of month of an epoch-seconds value (one subclass per
    part, so the part is in SQLAlchemy's cache key)."""

    type = Integer()
    inherit_cache = True
    part = ""


class utc_year(calendar_part):  # noqa: N801
    inherit_cache = True
    part = "year"


class utc_month(calendar_part):  # noqa: N801
    inherit_cache = True
    part = "month"


class utc_day(calendar_part):  # noqa: N801
    inherit_cache = True
    part = "day"


class epoch_of(FunctionElement[int]):  # noqa: N801
    """Epoch seconds of a timestamp column."""

    type = EPOCH
    inherit_cache = True


@compiles(calendar_part, "sqlite")
def _calendar_part_sqlite(element: calendar_part, compiler: SQLCompiler, **kw: Any) -> str:
    epoch = compiler.process(element.clauses, **kw)
    return f"CAST(strftime('{CALENDAR_PARTS[element.part]}', {epoch}, 'unixepoch') AS INTEGER)"


@compiles(calendar_part, "postgresql")
def _calendar_part_postgresql(element: calendar_part, compiler: SQLCompiler, **kw: Any) -> str:
    epoch = compiler.process(element.clauses, **kw)
    return (
        f"CAST(EXTRACT({element.part.upper()} FROM TO_TIMESTAMP({epoch}) AT TIME ZONE 'UTC')"
        " AS INTEGER)"
    )


@compiles(epoch_of, "sqlite")
def _epoch_of_sqlite(element: epoch_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_of, "postgresql")
def _epoch_of_postgresql(element: epoch_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(functions_ext.strpos, "sqlite")
def _strpos_sqlite(element: functions_ext.strpos, compiler: SQLCompiler, **kw: Any) -> str:
    """odata-query's indexof uses strpos, which SQLite spells instr."""
    return f"instr({compiler.process(element.clauses, **kw)})"
