"""Strict JSON request bodies: RFC 8259 only, so a body means one thing.

Python's decoder accepts NaN/Infinity (not JSON; a NaN also broke the 422 response, a 500) and
lets a repeated key silently win (``{"count": 5, "count": 6}``: what a proxy or log shows is not
what gets stored). Both are refused with a 400 before validation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different, or a 400 naming the repeated key."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        repeated = next(key for n, (key, _) in enumerate(pairs) if key in dict(pairs[:n]))
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"JSON object has the key {repeated!r} more than once"
        )
    return obj


def no_constants(name: str) -> float:
    """NaN, Infinity and -Infinity are JavaScript, not JSON."""
    raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{name} is not a JSON number")


def strict_loads(body: bytes) -> Any:
    return json.loads(body, object_pairs_hook=unique_keys, parse_constant=no_constants)


class StrictJsonRequest(Request):
    """A request whose ``json()`` is `strict_loads` (FastAPI parses bodies through it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Route class for routers that take JSON bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
