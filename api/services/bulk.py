"""Bulk inserts of rows known to be new: COPY on PostgreSQL, executemany elsewhere.

Ingest classifies a batch against what is stored before it writes, so its new reports and
their rows need no ON CONFLICT. PostgreSQL's COPY takes them as one stream, several times
cheaper per row, for this process and for the server, than one INSERT execution a row. A row
that is there after all (a concurrent resend committed first) fails the COPY with the unique
violation an INSERT would raise, as the same SQLAlchemy error (IntegrityError), and any other
driver error (the database went away) as its SQLAlchemy kind too.

A JSON value the caller has encoded already (`JsonText`) goes into COPY as that text, not
encoded a second time.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json
from sqlalchemy import JSON, Connection, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


class JsonText(str):
    """A JSON column's value as JSON text (the caller encoded it anyway)."""


def insert_new_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        copy_rows(connection, table, rows)
    else:
        if any(isinstance(value, JsonText) for value in rows[0].values()):
            rows = [decoded(row) for row in rows]
        session.execute(insert(table), rows)


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    """The row with JSON texts as values, for SQLAlchemy's JSON type, which encodes them."""
    return {k: json.loads(v) if isinstance(v, JsonText) else v for k, v in row.items()}


def json_for_copy(value: Any) -> Any:
    """What COPY writes for a JSON column's value: its text when known, else psycopg's dump."""
    if isinstance(value, JsonText):
        return str(value)
    return None if value is None else Json(value)


def copy_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """COPY `rows` into `table` over the connection's own driver connection (psycopg)."""
    columns = list(rows[0])
    json_at = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in columns]
                for i in json_at:
                    values[i] = json_for_copy(values[i])
                copy.write_row(values)
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement.as_string(driver), None, exc, psycopg.Error) from exc
