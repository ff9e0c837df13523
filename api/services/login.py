"""Passwords and login sessions.

Passwords are Argon2id hashes (argon2-cffi's RFC 9106 defaults); a hash made with older
parameters is replaced at the next successful login. A login session is a server-side row;
the cookie holds `<id>.<secret>` and the database only a keyed hash of the secret, so a copy
of the database cannot be replayed as a cookie. A session ends when it has been idle too long,
at its absolute expiry, when it is revoked (logout, password change) or when its account is
disabled.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlalchemy.orm import Session

from api.models import LoginSession, User
from api.services.tokens import hash_token
from api.settings import Settings

SESSION_COOKIE = "tally_session"
CSRF_HEADER = "X-CSRF-Token"
TOUCH_EVERY = timedelta(minutes=1)
"""`last_seen_at` moves at most this often: idle expiry without a write per request."""

hasher = PasswordHasher()
hashing = threading.BoundedSemaphore(4)
"""Each Argon2 run takes 64 MiB: a flood of logins queues here instead of exhausting memory
(per process on purpose: it guards this process's memory; failed logins are counted by
api/limiting.py, shared between replicas)."""


@cache
def dummy_hash() -> str:
    """A hash no password matches: unknown accounts cost the same time as wrong passwords."""
    return hash_password(secrets.token_urlsafe(32))


def hash_password(password: str) -> str:
    with hashing:
        return hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """Whether `password` is this user's; always runs one Argon2 verification.

    On success a hash made with outdated parameters is replaced (the caller commits).
    """
    stored = user.password_hash if user is not None else None
    expected = stored or dummy_hash()
    try:
        with hashing:
            hasher.verify(expected, password)
    except (VerificationError, InvalidHashError):
        return False
    if user is None or stored is None:
        return False
    if hasher.check_needs_rehash(stored):
        user.password_hash = hash_password(password)
    return True


@dataclass(frozen=True, slots=True)
class StartedSession:
    """A new session: the cookie value exists only here and in the browser."""

    record: LoginSession
    cookie: str


def start_session(
    session: Session, settings: Settings, user: User, client_ip: str, now: datetime | None = None
) -> StartedSession:
    """Open a login session for `user` (and note the login time)."""
    now = now or datetime.now(UTC)
    session_id, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
    record = LoginSession(
        id=session_id,
        user_id=user.id,
        secret_hash=hash_token(settings.secret_key, secret),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        revoked_at=None,
        client_ip=client_ip[:64],
    )
    session.add(record)
    user.last_login_at = now
    return StartedSession(record=record, cookie=f"{session_id}.{secret}")


def resolve_session(
    session: Session, settings: Settings, cookie: str, now: datetime | None = None
) -> tuple[LoginSession, User] | None:
    """The live session and enabled account a cookie stands for, or None.

    Slides the idle expiry (at most once per TOUCH_EVERY; the caller commits).
    """
    now = now or datetime.now(UTC)
    session_id, _, secret = cookie.partition(".")
    if not secret or len(session_id) != 32:
        return None
    record = session.get(LoginSession, session_id)
    if record is None or not hmac.compare_digest(
        record.secret_hash, hash_token(settings.secret_key, secret)
    ):
        return None
    idle_limit = record.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if record.revoked_at is not None or now >= record.expires_at or now >= idle_limit:
        return None
    user = session.get(User, record.user_id)
    if user is None or user.disabled:
        return None
    if now - record.last_seen_at >= TOUCH_EVERY:
        record.last_seen_at = now
    return record, user


def csrf_matches(record: LoginSession, header: str | None) -> bool:
    """Constant-time check of the X-CSRF-Token header against the session's token."""
    return header is not None and hmac.compare_digest(
        record.csrf_token.encode(), header.encode("utf-8", "surrogateescape")
    )


def revoke_session(session: Session, session_id: str) -> None:
    """End one session (logout)."""
    record = session.get(LoginSession, session_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = datetime.now(UTC)


def revoke_user_sessions(session: Session, user_id: int) -> int:
    """End every live session of an account (password change, disabling, role change)."""
    result = session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
