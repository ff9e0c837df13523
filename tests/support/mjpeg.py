"""A real HTTP MJPEG camera on 127.0.0.1, for source tests.

Frames are synthesised in memory (numpy + cv2.imencode: tests may encode images, product code
may not). The server can be stopped and restarted on the same port, and can be told to hang,
so reconnect and stall handling are tested against real sockets, not mocks.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import cv2
import numpy as np

BOUNDARY = "tallyframe"
Behaviour = Literal["stream", "hang_after_frames", "silent"]


def synthetic_jpeg(index: int, width: int = 160, height: int = 120) -> bytes:
    """A small JPEG whose brightness changes with ``index`` (so frames differ)."""
    image = np.full((height, width, 3), (index * 7) % 256, dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return bytes(encoded.tobytes())


class MjpegServer:
    """Serves ``multipart/x-mixed-replace`` JPEG frames at ``fps`` on ``/stream``.

    ``behaviour``: ``stream`` sends frames until stopped; ``hang_after_frames`` sends
    ``hang_after`` frames then keeps the connection open and silent; ``silent`` accepts
    the request and never answers. ``frames(i)`` gives the i-th JPEG of a connection
    (default: one still frame).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        fps: float = 50.0,
        behaviour: Behaviour = "stream",
        hang_after: int = 60,
        frames: Callable[[int], bytes] | None = None,
    ) -> None:
        self.fps = fps
        self.behaviour: Behaviour = behaviour
        self.hang_after = hang_after
        self.connections = 0
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._frame = synthetic_jpeg(0)
        self._frames = frames

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, credentials: str = "") -> str:
        at = f"{credentials}@" if credentials else ""
        return f"http://{at}127.0.0.1:{self.port}/stream"

    def start(self) -> MjpegServer:
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self._requested_port), self._handler())
        self._server.daemon_threads = True
        self._requested_port = self.port  # a restart reuses the same port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (the camera 'dies')."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

            def do_GET(self) -> None:
                with server._lock:
                    server.connections += 1
                    server._sockets.append(self.connection)
                if server.behaviour == "silent":
                    server._stopping.wait()
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                with contextlib.suppress(OSError):
                    server._send_frames(self)

        return Handler

    def _send_frames(self, handler: BaseHTTPRequestHandler) -> None:
        sent = 0
        while not self._stopping.is_set():
            if self.behaviour == "hang_after_frames" and sent >= self.hang_after:
                self._stopping.wait()
                return
            frame = self._frames(sent) if self._frames else self._frame
            part = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame)}\r\n\r\n"
            ).encode()
            handler.wfile.write(part + frame + b"\r\n")
            handler.wfile.flush()
            sent += 1
            time.sleep(1.0 / self.fps)
