"""Commissioning without imagery: scene maps, the live check and manual validation tallies."""

from __future__ import annotations

from fastapi import APIRouter

from api.strict_json import StrictJsonRoute

router = APIRouter(prefix="/api/v1", tags=["commissioning"], route_class=StrictJsonRoute)
