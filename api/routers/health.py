"""Liveness and readiness for load balancers and the CI."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.deps import SessionDep
from api.limiting import RateLimits, SharedState
from api.routers.errors import error_responses

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    """The API answers and its database does too (and Redis, where limits are shared)."""

    status: Literal["ok", "degraded"] = Field(title="Overall status")
    database: Literal["ok"] = Field(title="Database reachable")
    rate_limits: SharedState | None = Field(
        default=None, title="Redis of the shared limits reachable (absent: limits per process)"
    )


@router.get(
    "/healthz",
    operation_id="get_health",
    summary="Liveness and database check",
    response_model=HealthOut,
    response_model_exclude_none=True,
    responses=error_responses(503),
)
def get_health(request: Request, session: SessionDep) -> HealthOut:
    """200 when the database answers; 503 when it does not. Without Redis the limits count
    per process: "degraded", still 200, since every replica shares the one Redis and taking
    them out of the load balancer would help no one."""
    session.execute(text("SELECT 1"))
    limits: RateLimits = request.app.state.rate_limits
    shared = limits.shared_state()
    status = "degraded" if shared == "unavailable" else "ok"
    return HealthOut(status=status, database="ok", rate_limits=shared)
