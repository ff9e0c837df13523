"""Alembic environment: the URL comes from the caller's config or TALLY_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from api.db import make_engine
from api.models import Base
from api.settings import Settings


def database_url() -> str:
    """`python -m api migrate` passes the URL in; plain `alembic` falls back to settings."""
    url = context.config.attributes.get("database_url")
    return str(url) if url else Settings().database_url


def run_with(connection: Connection) -> None:
    """Batch mode lets SQLite alter tables (it rebuilds them) with the same scripts."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database (the only mode Tally uses)."""
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            run_with(connection)
    finally:
        engine.dispose()


run_migrations_online()
