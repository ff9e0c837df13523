"""Camera set-up: versioned remote configuration and calibration fitting (editors)."""

from __future__ import annotations

from fastapi import APIRouter

from api.strict_json import StrictJsonRoute

router = APIRouter(prefix="/api/v1", tags=["setup"], route_class=StrictJsonRoute)
