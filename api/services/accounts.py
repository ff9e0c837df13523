"""Account management for admins: change, disable and delete planner accounts.

Creating accounts, passwords and sessions belong to api/services/users.py and login.py; this
module decides who has which role on which sites, and ends an account's sessions when that
changes, so a demoted or disabled account loses its rights at once, not when its cookie expires.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.models import User
from api.schemas import UserIn, UserOut, UserPatch
from api.services import login, users
from api.services.audit import CLI, Origin
from api.services.errors import DomainError, NotFoundError

SESSION_ENDING_FIELDS = frozenset({"role", "site_ids", "disabled"})
"""Changes that end the account's login sessions: its rights or its access changed."""


class SelfLockoutError(DomainError):
    """An admin tried to demote, disable or delete their own account."""


def describe(user: User) -> UserOut:
    """The account as the API shows it: nothing secret."""
    site_ids = users.site_ids_of(user)
    return UserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=users.role_of(user),
        site_ids=sorted(site_ids) if site_ids is not None else None,
        disabled=user.disabled,
        sso=user.oidc_subject is not None,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def require_user(session: Session, user_id: int) -> User:
    """The account with this id, or a NotFoundError."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} does not exist")
    return user


def create_user(session: Session, spec: UserIn, origin: Origin = CLI) -> tuple[User, str]:
    """A new account with a generated password; returns both (show the password once)."""
    password = users.generate_password()
    return users.create_user(session, spec, password, origin), password


def refuse_self_lockout(origin: Origin, user: User, what: str) -> None:
    """An admin keeps their own account, so nobody locks the last admin out by mistake."""
    if origin.principal is not None and origin.principal.user_id == user.id:
        raise SelfLockoutError(f"you cannot {what} your own account; ask another admin")


def update_user(session: Session, user_id: int, patch: UserPatch, origin: Origin = CLI) -> User:
    """Apply the fields the patch names; a change of role, sites or disabled ends sessions."""
    user = require_user(session, user_id)
    current = describe(user)
    wanted: dict[str, Any] = patch.model_dump(exclude_unset=True)
    changed = {k: v for k, v in wanted.items() if getattr(current, k) != v}
    if "role" in changed:
        refuse_self_lockout(origin, user, "demote")
    if changed.get("disabled"):
        refuse_self_lockout(origin, user, "disable")
    if "site_ids" in changed:
        refuse_self_lockout(origin, user, "change the sites of")
    users.refuse_restricted_admin(
        changed.get("role", current.role), changed.get("site_ids", current.site_ids)
    )
    if "site_ids" in changed:
        users.restrict_to_sites(session, user, changed["site_ids"])
    for name in ("display_name", "role", "disabled"):
        if name in changed:
            setattr(user, name, changed[name])
    session.flush()
    ended = (
        login.revoke_user_sessions(session, user.id)
        if SESSION_ENDING_FIELDS & changed.keys()
        else 0
    )
    origin.record(session, "user.update", user.email, {"changed": changed, "sessions_ended": ended})
    return user


def delete_user(session: Session, user_id: int, origin: Origin = CLI) -> None:
    """Delete an account; its sessions and site restriction go with it (foreign keys)."""
    user = require_user(session, user_id)
    refuse_self_lockout(origin, user, "delete")
    origin.record(session, "user.delete", user.email, {"id": user.id, "role": user.role})
    session.delete(user)
    session.flush()
