"""Bearer tokens: `tally_<id>_<secret>`, stored as an HMAC keyed with the settings' secret.

The id is a public lookup key, so checking a token is one primary-key read and one
constant-time comparison; the database never holds anything that could be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import update
from sqlalchemy.orm import Session

from api.models import ApiToken
from api.services.registry import require_camera

TokenKind = Literal["device", "admin"]
TOKEN_PATTERN = re.compile(r"^tally_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly issued token: the only moment its secret exists outside the holder."""

    token_id: str
    token: str


def hash_token(secret_key: str, token: str) -> str:
    """Keyed hash, so a copy of the database alone cannot be used to test guesses."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def issue_token(
    session: Session, secret_key: str, kind: TokenKind, camera_id: str | None, name: str = ""
) -> IssuedToken:
    """Create and store a token; the caller shows `token` once and never again."""
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
        )
    )
    return IssuedToken(token_id=token_id, token=token)


def verify_token(session: Session, secret_key: str, token: str, kind: TokenKind) -> ApiToken | None:
    """The live token of this kind that `token` is, or None (unknown, wrong or revoked)."""
    match = TOKEN_PATTERN.match(token)
    if match is None:
        return None
    stored = session.get(ApiToken, match.group(1))
    expected = stored.token_hash if stored is not None else hash_token(secret_key, "")
    if not hmac.compare_digest(expected, hash_token(secret_key, token)):
        return None
    if stored is None or stored.kind != kind or stored.revoked_at is not None:
        return None
    return stored


def revoke_camera_tokens(session: Session, camera_id: str) -> int:
    """Revoke every live device token of a camera; returns how many were live."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.camera_id == camera_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def revoke_token(session: Session, token_id: str) -> bool:
    """Revoke one token by its public id; False when there is no such live token."""
    stored = session.get(ApiToken, token_id)
    if stored is None or stored.revoked_at is not None:
        return False
    stored.revoked_at = datetime.now(UTC)
    return True


def issue_device_token(
    session: Session, secret_key: str, camera_id: str, *, rotate: bool = False
) -> IssuedToken:
    """A new token for an existing camera; `rotate` revokes the camera's other tokens first."""
    require_camera(session, camera_id)
    if rotate:
        revoke_camera_tokens(session, camera_id)
    return issue_token(session, secret_key, "device", camera_id)
