"""Principals for the management tests: admin tokens, and accounts signed in with a real login
session (cookie and CSRF token), made through the same services as the API and the CLI."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select

from api.db import session_scope
from api.models import AuditEvent
from api.schemas import UserIn
from api.services import login, tokens, users
from api.services.access import Role


@dataclass(frozen=True)
class SignedIn:
    """An account with a live login session; `headers` carry its cookie and CSRF token."""

    user_id: int
    email: str
    headers: dict[str, str]


def admin_token_headers(app: FastAPI, name: str = "tests") -> dict[str, str]:
    """A fresh admin bearer token: an unrestricted admin principal."""
    with session_scope(app.state.session_factory) as session:
        issued = tokens.issue_token(session, app.state.settings.secret_key, "admin", None, name)
    return {"Authorization": f"Bearer {issued.token}"}


def sign_in(app: FastAPI, role: Role, site_ids: Sequence[str] | None = None) -> SignedIn:
    """A new account of `role` (single-sign-on only: no password to hash) and a session."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    spec = UserIn(
        email=email,
        display_name=f"Test {role}",
        role=role,
        site_ids=list(site_ids) if site_ids is not None else None,
    )
    with session_scope(app.state.session_factory) as session:
        user = users.create_user(session, spec, None)
        started = login.start_session(session, app.state.settings, user, "127.0.0.1")
        cookie, csrf, user_id = started.cookie, started.record.csrf_token, user.id
    headers = {"Cookie": f"{login.SESSION_COOKIE}={cookie}", login.CSRF_HEADER: csrf}
    return SignedIn(user_id=user_id, email=email, headers=headers)


def count_rows(app: FastAPI, model: Any, *where: Any) -> int:
    """How many rows of `model` match."""
    with app.state.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def events_for(app: FastAPI, target: str) -> list[AuditEvent]:
    """Audit events about `target`, oldest first."""
    with app.state.session_factory() as session:
        statement = select(AuditEvent).where(AuditEvent.target == target).order_by(AuditEvent.id)
        return list(session.scalars(statement))


def now_minute() -> datetime:
    """The current minute: reports dated now pass every ingest window."""
    return datetime.now(UTC).replace(second=0, microsecond=0)
