"""Who is asking: roles, and the principal a request acts as.

Roles are ordered: a `viewer` reads private sites and device health; an `editor` also changes
sites and camera set-up; an `admin` also manages accounts and device tokens. An account may be
restricted to some sites; an admin token acts as an unrestricted admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from api.schemas import Role as Role  # its one home is the API schemas; re-exported here
from api.services.scope import Audience

ROLES: tuple[Role, ...] = get_args(Role)
ROLE_RANK: dict[Role, int] = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True, slots=True)
class Principal:
    """The account (or admin token) a request acts as."""

    actor: str
    """E-mail of the account, or `token:<id>` for an admin token: what the audit log names."""
    display_name: str
    role: Role
    site_ids: frozenset[str] | None = None
    """Sites the account is restricted to; None: every site."""
    user_id: int | None = None
    session_id: str | None = None
    """The login session behind a cookie request (None for bearer tokens)."""

    def has(self, role: Role) -> bool:
        """Whether this principal's role includes `role`."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def audience(self) -> Audience:
        """What this principal may read."""
        return Audience(private=True, site_ids=self.site_ids)

    def may_manage_site(self, site_id: str) -> bool:
        """Editors change only sites they can see."""
        return self.site_ids is None or site_id in self.site_ids
