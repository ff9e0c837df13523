"""Bulk inserts of rows known to be new: COPY on PostgreSQL, executemany elsewhere.

Ingest classifies a batch against what is stored before it writes, so its new reports and
their rows need no ON CONFLICT. PostgreSQL's COPY takes them as one stream, several times
cheaper per row, for this process and for the server, than one INSERT execution a row. A row
that is there after all (a concurrent resend committed first) fails the COPY with the unique
violation an INSERT would raise, as the same SQLAlchemy error (IntegrityError), and any other
driver error (the database went away) as its SQLAlchemy kind too.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json
from sqlalchemy import JSON, Connection, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def insert_new_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        copy_rows(connection, table, rows)
    else:
        session.execute(insert(table), rows)


def copy_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """COPY `rows` into `table` over the connection's own driver connection (psycopg)."""
    columns = list(rows[0])
    as_json = [isinstance(table.c[name].type, JSON) for name in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        Json(row[name]) if json and row[name] is not None else row[name]
                        for name, json in zip(columns, as_json, strict=True)
                    ]
                )
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement.as_string(driver), None, exc, psycopg.Error) from exc
