"""Bearer tokens: `tally_<id>_<secret>`, stored as an HMAC keyed with the settings' secret.

The id is a public lookup key, so checking a token is one primary-key read and one
constant-time comparison; the database never holds anything that could be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from api.models import ApiToken, Camera
from api.schemas import TokenInfo, TokenStatus
from api.services.audit import CLI, Origin
from api.services.registry import require_camera, require_manageable

TokenKind = Literal["device", "admin"]
TOKEN_PATTERN = re.compile(r"^tally_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
USE_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is kept to this resolution: a busy token costs one write a minute, not one
write a request."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly issued token: the only moment its secret exists outside the holder."""

    token_id: str
    token: str
    expires_at: datetime | None = None


def hash_token(secret_key: str, token: str) -> str:
    """Keyed hash, so a copy of the database alone cannot be used to test guesses."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def issue_token(
    session: Session,
    secret_key: str,
    kind: TokenKind,
    camera_id: str | None,
    name: str = "",
    *,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """Create and store a token; the caller shows `token` once and never again.

    Not audited: the callers that act for someone (below) record what they did.
    """
    token_id = secrets.token_hex(8)
    token = f"tally_{token_id}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiToken(
            id=token_id,
            kind=kind,
            camera_id=camera_id,
            name=name,
            token_hash=hash_token(secret_key, token),
            created_at=datetime.now(UTC),
            revoked_at=None,
            expires_at=expires_at,
        )
    )
    return IssuedToken(token_id=token_id, token=token, expires_at=expires_at)


def token_status(stored: ApiToken, now: datetime) -> TokenStatus:
    """Revoked wins over expired: both refuse the token, revoked says someone meant it."""
    if stored.revoked_at is not None:
        return "revoked"
    if stored.expires_at is not None and stored.expires_at <= now:
        return "expired"
    return "live"


def verify_token(
    session: Session, secret_key: str, token: str, kind: TokenKind
) -> tuple[ApiToken, Camera | None] | None:
    """The live token of this kind that `token` is, with its camera (None for an admin token)
    from the same read (a device request needs both); None when unknown, wrong, revoked or
    expired.

    A live token's `last_used_at` is set when it is older than USE_RESOLUTION; the caller's
    commit stores it.
    """
    return verify_tokens(session, secret_key, [token], kind)[0]


def verify_tokens(
    session: Session, secret_key: str, tokens: Sequence[str], kind: TokenKind
) -> list[tuple[ApiToken, Camera | None] | None]:
    """`verify_token` for several tokens, in one read."""
    matches = [TOKEN_PATTERN.match(token) for token in tokens]
    ids = sorted({match.group(1) for match in matches if match is not None})
    found: dict[str, tuple[ApiToken, Camera | None]] = {}
    if ids:
        statement = (
            select(ApiToken, Camera)
            .outerjoin(Camera, Camera.id == ApiToken.camera_id)
            .where(ApiToken.id.in_(ids))
        )
        if kind == "device":  # what ingest checks a report against when no set-up is stored
            statement = statement.options(joinedload(Camera.lines), joinedload(Camera.zones))
        found = {row[0].id: (row[0], row[1]) for row in session.execute(statement).unique()}
    now = datetime.now(UTC)
    return [
        live_token(secret_key, token, found.get(match.group(1)), kind, now)
        if match is not None
        else None
        for token, match in zip(tokens, matches, strict=True)
    ]


def live_token(
    secret_key: str,
    token: str,
    found: tuple[ApiToken, Camera | None] | None,
    kind: TokenKind,
    now: datetime,
) -> tuple[ApiToken, Camera | None] | None:
    """`found` when it is the live token of this kind that `token` is (compared in constant
    time, against a dummy when nothing was found), else None."""
    stored = found[0] if found is not None else None
    expected = stored.token_hash if stored is not None else hash_token(secret_key, "")
    if not hmac.compare_digest(expected, hash_token(secret_key, token)):
        return None
    if found is None or stored is None or stored.kind != kind:
        return None
    if token_status(stored, now) != "live":
        return None
    if stored.last_used_at is None or now - stored.last_used_at >= USE_RESOLUTION:
        stored.last_used_at = now
    return found


@dataclass
class RecentTokens:
    """Keyed hashes of tokens this process found live lately, each until `ttl_s` after the
    check (or its expiry, if sooner).

    Only a gate: a device request whose token is here skips the database read that refuses
    strangers before their body is parsed. It is never the authority: the request's own
    transaction checks the token row again (revoked, expired, deleted), so revoking a token
    takes effect at once in every process. Bounded: a full table is swept of stale entries,
    and emptied if that is not enough.
    """

    ttl_s: float = 300.0
    max_entries: int = 100_000
    _until: dict[str, float] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def remember(self, token_hash: str, expires_at: datetime | None) -> None:
        until = time.monotonic() + self.ttl_s
        if expires_at is not None:
            until = min(until, time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds())
        with self._lock:
            if len(self._until) >= self.max_entries:
                now = time.monotonic()
                self._until = {k: t for k, t in self._until.items() if t > now}
                if len(self._until) >= self.max_entries:
                    self._until.clear()
            self._until[token_hash] = until

    def forget(self, token_hash: str) -> None:
        with self._lock:
            self._until.pop(token_hash, None)

    def __contains__(self, token_hash: str) -> bool:
        return self._until.get(token_hash, 0.0) > time.monotonic()


def list_tokens(session: Session, camera_id: str | None = None) -> list[TokenInfo]:
    """Every token (or a camera's), newest first, with its status and nothing secret."""
    statement = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id)
    if camera_id is not None:
        statement = statement.where(ApiToken.camera_id == camera_id)
    now = datetime.now(UTC)
    return [
        TokenInfo(
            token_id=t.id,
            kind=t.kind,
            camera_id=t.camera_id,
            name=t.name,
            created_at=t.created_at,
            expires_at=t.expires_at,
            last_used_at=t.last_used_at,
            revoked_at=t.revoked_at,
            status=token_status(t, now),
        )
        for t in session.scalars(statement)
    ]


def revoke_live_tokens(session: Session, camera_id: str) -> int:
    """Revoke every live device token of a camera (unaudited: callers record why)."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.camera_id == camera_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def revoke_camera_tokens(session: Session, camera_id: str, origin: Origin = CLI) -> int:
    """Lock a camera's worker out until it gets a new token; returns how many were live."""
    camera = require_camera(session, camera_id)
    require_manageable(origin, camera.site_id)
    revoked = revoke_live_tokens(session, camera_id)
    origin.record(session, "token.revoke_camera", camera_id, {"revoked": revoked})
    return revoked


def revoke_token(session: Session, token_id: str, origin: Origin = CLI) -> bool:
    """Revoke one token by its public id; False when there is no such live token."""
    stored = session.get(ApiToken, token_id)
    if stored is None or stored.revoked_at is not None:
        return False
    stored.revoked_at = datetime.now(UTC)
    origin.record(
        session, "token.revoke", token_id, {"kind": stored.kind, "camera_id": stored.camera_id}
    )
    return True


def expiry(lifetime: timedelta | None) -> datetime | None:
    """When a token issued now with this lifetime stops working (None: never)."""
    return datetime.now(UTC) + lifetime if lifetime is not None else None


def issue_device_token(
    session: Session,
    secret_key: str,
    camera_id: str,
    *,
    rotate: bool = False,
    lifetime: timedelta | None = None,
    origin: Origin = CLI,
) -> IssuedToken:
    """A new token for an existing camera; `rotate` revokes the camera's other tokens first."""
    camera = require_camera(session, camera_id)
    require_manageable(origin, camera.site_id)
    revoked = revoke_live_tokens(session, camera_id) if rotate else 0
    issued = issue_token(session, secret_key, "device", camera_id, expires_at=expiry(lifetime))
    origin.record(
        session,
        "token.rotate" if rotate else "token.issue",
        issued.token_id,
        {"camera_id": camera_id, "expires_at": iso(issued.expires_at), "revoked": revoked},
    )
    return issued


def create_admin_token(
    session: Session,
    secret_key: str,
    name: str,
    *,
    lifetime: timedelta | None = None,
    origin: Origin = CLI,
) -> IssuedToken:
    """A new admin token (an unrestricted admin principal) for `name`."""
    issued = issue_token(session, secret_key, "admin", None, name, expires_at=expiry(lifetime))
    origin.record(
        session,
        "admin_token.create",
        issued.token_id,
        {"name": name, "expires_at": iso(issued.expires_at)},
    )
    return issued


def iso(moment: datetime | None) -> str | None:
    """A time as the audit log's JSON keeps it."""
    return moment.isoformat() if moment is not None else None
