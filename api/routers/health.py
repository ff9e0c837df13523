"""Liveness and readiness for load balancers and the CI."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.deps import SessionDep
from api.routers.errors import error_responses

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    """The API answers and its database does too."""

    status: Literal["ok"] = Field(title="Overall status")
    database: Literal["ok"] = Field(title="Database reachable")


@router.get(
    "/healthz",
    operation_id="get_health",
    summary="Liveness and database check",
    response_model=HealthOut,
    responses=error_responses(503),
)
def get_health(session: SessionDep) -> HealthOut:
    """200 when the database answers; 503 when it does not."""
    session.execute(text("SELECT 1"))
    return HealthOut(status="ok", database="ok")
