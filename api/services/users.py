"""Planner accounts: create, restrict to sites, change passwords, and the principal an
account acts as.

E-mail addresses are stored lower-cased (api.schemas.Email), so look-ups are exact.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Site, User, UserSite
from api.schemas import Role, UserIn
from api.services import login
from api.services.access import ROLES, Principal
from api.services.audit import CLI, Origin
from api.services.errors import AlreadyExistsError, DomainError, NotFoundError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
"""Argon2 takes any length; the bound keeps one request from hashing megabytes."""


class WeakPasswordError(DomainError):
    """A new password that the policy refuses; the message says why."""


def generate_password() -> str:
    """A random password of 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)


def check_password(password: str, email: str) -> None:
    """Refuse passwords that are too short, too long, or the account's own e-mail."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().lower() == email.strip().lower():
        raise WeakPasswordError("the password may not be the account's e-mail address")


def find_user(session: Session, email: str) -> User | None:
    """The account with this (lower-cased) e-mail, if any."""
    return session.scalars(select(User).where(User.email == email.strip().lower())).first()


def require_user(session: Session, email: str) -> User:
    """The account with this e-mail, or a NotFoundError that names it."""
    user = find_user(session, email)
    if user is None:
        raise NotFoundError(f"no account {email!r}")
    return user


def list_users(session: Session) -> list[User]:
    """Every account, by e-mail."""
    return list(session.scalars(select(User).order_by(User.email)))


def site_ids_of(user: User) -> frozenset[str] | None:
    """The sites an account is restricted to; None: every site."""
    return frozenset(link.site_id for link in user.sites) or None


def role_of(user: User) -> Role:
    """The stored role, checked against the known ones (an unknown one reads as viewer)."""
    return next((role for role in ROLES if role == user.role), "viewer")


def principal_of(user: User, session_id: str | None = None) -> Principal:
    """What a request signed in as `user` may do."""
    return Principal(
        actor=user.email,
        display_name=user.display_name,
        role=role_of(user),
        site_ids=site_ids_of(user),
        user_id=user.id,
        session_id=session_id,
    )


def restrict_to_sites(session: Session, user: User, site_ids: Sequence[str] | None) -> None:
    """Replace an account's site restriction (None or empty: every site); sites must exist."""
    wanted = sorted(set(site_ids or ()))
    missing = [site_id for site_id in wanted if session.get(Site, site_id) is None]
    if missing:
        raise NotFoundError(f"no such site(s): {', '.join(missing)}")
    kept = {link.site_id: link for link in user.sites}
    user.sites = [kept.get(site_id) or UserSite(site_id=site_id) for site_id in wanted]


def refuse_restricted_admin(role: str, site_ids: Sequence[str] | None) -> None:
    """An admin manages accounts and tokens of every site, so a restriction would only pretend
    (and the admin could lift it)."""
    if role == "admin" and site_ids is not None:
        raise DomainError("an admin account cannot be restricted to sites")


def create_user(session: Session, spec: UserIn, password: str | None, origin: Origin = CLI) -> User:
    """A new account; `password` None makes one that signs in through single sign-on only."""
    refuse_restricted_admin(spec.role, spec.site_ids)
    if find_user(session, spec.email) is not None:
        raise AlreadyExistsError(f"an account {spec.email!r} already exists")
    if password is not None:
        check_password(password, spec.email)
    now = datetime.now(UTC)
    user = User(
        email=spec.email,
        display_name=spec.display_name,
        role=spec.role,
        password_hash=login.hash_password(password) if password is not None else None,
        oidc_subject=None,
        disabled=False,
        created_at=now,
        password_changed_at=now if password is not None else None,
    )
    restrict_to_sites(session, user, spec.site_ids)
    session.add(user)
    session.flush()
    origin.record(
        session,
        "user.create",
        user.email,
        {"display_name": user.display_name, "role": user.role, "site_ids": spec.site_ids},
    )
    return user


def set_password(session: Session, user: User, password: str, origin: Origin = CLI) -> int:
    """Replace the password and end every session of the account; returns how many ended."""
    check_password(password, user.email)
    user.password_hash = login.hash_password(password)
    user.password_changed_at = datetime.now(UTC)
    ended = login.revoke_user_sessions(session, user.id)
    origin.record(session, "user.password", user.email, {"sessions_ended": ended})
    return ended
