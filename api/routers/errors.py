"""Error responses shared by the routers' OpenAPI descriptions."""

from __future__ import annotations

from typing import Any

from api.schemas import ErrorOut

DESCRIPTIONS = {
    400: "Body is not valid JSON",
    401: "Missing, unknown or revoked token",
    403: "The token may not do this",
    404: "No such site, camera or token",
    409: "Already exists",
    413: "Request body too large",
    422: "Invalid request",
    429: "Rate limit exceeded",
    503: "Database unavailable; retry later (keep the data)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses."""
    return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code]} for code in codes}
