"""Strict JSON request bodies: RFC 8259 only, so a body means one thing.

Python's decoder accepts NaN/Infinity and turns 1e999 into infinity (not JSON; such a value
also broke the 422 response that echoes it, a 500) and
lets a repeated key silently win (``{"count": 5, "count": 6}``: what a proxy or log shows is not
what gets stored). Both are refused with a 400 before validation, as are bodies that are not
UTF-8 (RFC 8259 section 8.1).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different, or a 400 naming the repeated key (built in C
    first: a body has thousands of objects, nearly always without a repeat)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        repeated = next(k for k, n in Counter(key for key, _ in pairs).items() if n > 1)
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"JSON object has the key {repeated!r} more than once"
        )
    return obj


def no_constants(name: str) -> float:
    """NaN, Infinity and -Infinity are JavaScript, not JSON."""
    raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{name} is not a JSON number")


def finite_float(literal: str) -> float:
    """1e999 would parse as infinity: as out of range as the NaN literal."""
    value = float(literal)
    if not math.isfinite(value):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{literal} is out of range")
    return value


def strict_loads(body: bytes) -> Any:
    """UTF-8 only (json.loads would also guess UTF-16/32), and a clear 400 for deep nesting."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body is not UTF-8") from exc
    try:
        return json.loads(
            text,
            object_pairs_hook=unique_keys,
            parse_constant=no_constants,
            parse_float=finite_float,
        )
    except RecursionError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "JSON nested too deeply") from exc


class StrictJsonRequest(Request):
    """A request whose ``json()`` is `strict_loads` (FastAPI parses bodies through it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Route class for routers that take JSON bodies.

    FastAPI reads and parses the body before it solves any dependency, authentication
    included; `before_body` is the place for checks that need only the headers, so a caller
    they refuse costs no parsing.
    """

    async def before_body(self, request: Request) -> None:
        """Nothing by default; a subclass raises an HTTPException to refuse the request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            await self.before_body(request)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
