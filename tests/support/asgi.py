"""Requests through an ASGI app in process, without a server or a client in between."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Scope


async def download(app: ASGIApp, path: str, query: str) -> tuple[int, int]:
    """GET through the app itself: its status and the body's size, counted without keeping
    the body (so a measurement of the app's memory sees only the app's own)."""
    status, size = 0, 0
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError  # unreachable

    async def send(message: Message) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"tally.test")],
        "client": ("127.0.0.1", 50000),
        "server": ("tally.test", 80),
    }
    await app(scope, receive, send)
    return status, size
