"""The audit log: every admin and editor action, who did it, when and from where.

Details are what changed (ids, field names, new non-secret values); a secret (password,
token, client secret) never enters it. Services record; the caller's transaction commits the
event together with the change it describes, so the log never claims what did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import AuditEvent
from api.services.access import Principal

CLI_ACTOR = "cli"
SECRET_WORDS = ("password", "token", "secret")


def without_secrets(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details with every secret-looking key dropped: a guard, not a licence to pass them."""
    return {k: v for k, v in details.items() if not any(w in k.lower() for w in SECRET_WORDS)}


def record(
    session: Session,
    actor: Principal | None,
    action: str,
    target: str = "",
    client_ip: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add one event to the session (None as actor: the command line)."""
    event = AuditEvent(
        at=datetime.now(UTC),
        actor=actor.actor if actor is not None else CLI_ACTOR,
        role=actor.role if actor is not None else "",
        action=action,
        target=target,
        client_ip=client_ip,
        details=without_secrets(details or {}),
    )
    session.add(event)
    return event


@dataclass(frozen=True, slots=True)
class Origin:
    """Who asks a service for a change and from where: what its audit event names."""

    principal: Principal | None = None
    """None: the command line."""
    client_ip: str = ""

    def record(
        self, session: Session, action: str, target: str, details: Mapping[str, Any] | None = None
    ) -> AuditEvent:
        """Add the event for `action` on `target` to the caller's transaction."""
        return record(session, self.principal, action, target, self.client_ip, details)


CLI = Origin()
"""The command line (and the services' default): no principal, no address."""


def recent_events(session: Session, limit: int, before_id: int | None = None) -> list[AuditEvent]:
    """Newest first; `before_id` pages on from the last event a client has seen."""
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        statement = statement.where(AuditEvent.id < before_id)
    return list(session.scalars(statement))
