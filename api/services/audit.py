"""The audit log: every admin and editor action, who did it, when and from where.

Details are what changed (ids, field names, new non-secret values); a secret (password,
token, client secret) never enters it. Services record; the caller's transaction commits the
event together with the change it describes, so the log never claims what did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

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
