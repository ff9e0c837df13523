"""A scripted stand-in for the central API's ingest endpoints, for uplink tests.

It records every byte a worker sends and keeps what it accepted deduplicated by
``report_id`` (first version wins, like the real API). It answers either through
``httpx.MockTransport`` (protocol tests) or a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import httpx

from contract import ReportBatch
from tests.support.loopback import serving


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``store`` keeps the batch even on an error (a lost response)."""

    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    store: bool = False


REFUSE = None
"""Script entry: the connection is refused (no HTTP answer at all)."""


@dataclass(frozen=True)
class CapturedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def batch(self) -> ReportBatch:
        return ReportBatch.model_validate_json(self.body)


class ReportApi:
    """Answers report posts from ``script`` first, then with ``policy`` (default: accept).

    Heartbeats are always accepted.
    """

    def __init__(
        self,
        script: Iterable[Reply | None] = (),
        *,
        policy: Callable[[list[dict[str, object]]], Reply | None] | None = None,
    ) -> None:
        self.requests: list[CapturedRequest] = []
        self.stored: dict[str, dict[str, object]] = {}
        self.times_stored: Counter[str] = Counter()
        self._script = list(script)
        self._policy: Callable[[list[dict[str, object]]], Reply | None]
        self._policy = policy or (lambda _reports: Reply(201))
        self._lock = threading.Lock()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        with self._lock:
            self.requests.append(CapturedRequest(path, headers, body))
            if path != "/api/v1/reports":
                return Reply(201)
            reports = json.loads(body)["reports"]
            reply = self._script.pop(0) if self._script else self._policy(reports)
            if reply is not None and (reply.store or 200 <= reply.status < 300):
                for report in reports:
                    self.times_stored[report["report_id"]] += 1
                    self.stored.setdefault(report["report_id"], report)
            return reply

    def report_requests(self) -> list[CapturedRequest]:
        return [r for r in self.requests if r.path == "/api/v1/reports"]

    def mock_transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            reply = self.answer(request.url.path, dict(request.headers), request.read())
            if reply is None:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(reply.status, json=reply.body, headers=reply.headers)

        return httpx.MockTransport(handle)

    @contextmanager
    def serve(self) -> Iterator[str]:
        """A real HTTP server on 127.0.0.1; yields its base URL."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                reply = api.answer(self.path, dict(self.headers), body)
                if reply is None:
                    self.close_connection = True
                    return
                payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for name, value in {**reply.headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        with serving(Handler) as base_url:
            yield base_url
