"""ASGI middleware: a hard cap on request bodies, checked before anything parses them, and
the security headers of every response."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.services.login import SESSION_COOKIE
from api.settings import Settings, tile_source

API_PREFIX = "/api/"
OPEN_DATA_PREFIX = "/api/v1/open/"
PRIVATE_CACHING = "private, no-store"
PRIVATE_VARY = "Cookie, Authorization"
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes; send smaller batches"


class BodySizeLimit:
    """413 for a declared Content-Length over the limit, or a streamed body that grows past it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse({"detail": too_large(self.max_bytes)}, status_code=413)
            await response(scope, receive, send)
            return
        refusal = HTTPException(413, too_large(self.max_bytes))
        await self.app(scope, bounded_receive(receive, self.max_bytes, refusal), send)


def bounded_receive(receive: Receive, max_bytes: int, refusal: HTTPException) -> Receive:
    """`receive` that raises `refusal` once a streamed body grows past `max_bytes` (the app's
    cap here, a route's own lower one where it has one)."""
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise refusal
        return message

    return counting_receive


def content_security_policy(
    img_sources: Iterable[str] = (), script_hashes: Iterable[str] = ()
) -> str:
    """Scripts only from our origin (or by hash), nothing framed, no plugins, no <base>.

    Styles allow 'unsafe-inline' because Leaflet, ECharts and Swagger UI write style
    attributes; a style cannot run script.
    """
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *(f"'sha256-{digest}'" for digest in script_hashes)],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "img-src": ["'self'", "data:", *img_sources],
        "style-src": ["'self'", "'unsafe-inline'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def inline_script_policy(html: bytes | memoryview) -> str:
    """The policy of a page we generate with fixed inline scripts (Swagger UI's /docs): each of
    them allowed by its SHA-256 and nothing else inline, so the page works offline."""
    digests = (
        base64.b64encode(hashlib.sha256(script).digest()).decode()
        for script in INLINE_SCRIPT.findall(bytes(html))
    )
    return content_security_policy(script_hashes=digests)


HSTS = "max-age=31536000"
"""A year of HTTPS only for this host (not its subdomains, which a city may run elsewhere)."""


class SecurityHeaders:
    """The Content-Security-Policy and related headers on every response, and no caching of
    anything private.

    A response is private when the request carried credentials (an Authorization header or
    the session cookie) or came from the API outside the open-data feeds; it gets
    ``Cache-Control: private, no-store`` and ``Vary: Cookie, Authorization``. Open-data
    responses keep their own public caching whoever asks: they are the same for everyone.
    A route may set its own Content-Security-Policy (the docs page does).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        tiles = tile_source(settings.map_tile_url)
        self.headers = {
            "Content-Security-Policy": content_security_policy([tiles] if tiles else []),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "X-Frame-Options": "DENY",
            "Cross-Origin-Opener-Policy": "same-origin",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        https = scope.get("scheme") == "https"
        open_data = path.startswith(OPEN_DATA_PREFIX)
        private = carries_credentials(Headers(scope=scope)) or (
            path.startswith(API_PREFIX) and not open_data
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if https:  # only a response that came over TLS may pin the browser to it
                    headers.setdefault("Strict-Transport-Security", HSTS)
                public = "public" in headers.get("cache-control", "").lower()
                if private and not (open_data and public):
                    headers["Cache-Control"] = PRIVATE_CACHING
                    headers.add_vary_header(PRIVATE_VARY)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def carries_credentials(headers: Headers) -> bool:
    """An Authorization header or a session cookie, valid or not."""
    return "authorization" in headers or SESSION_COOKIE in cookie_parser(headers.get("cookie", ""))
