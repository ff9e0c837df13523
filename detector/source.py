"""Video sources (files, RTSP/HTTP(S) streams, local devices) as one explicit state machine.

States (``contract.StreamState``): ``connecting`` → ``streaming`` → on a lost stream
``reconnecting`` (with backoff) → ``streaming`` again; a hung read first goes ``stalled``.
Files end with ``ended``; live streams reconnect until ``stop()``. Every OpenCV call runs
on a thread owned by one capture, so a read that never returns is abandoned after
``stall_timeout_s`` instead of hanging the worker. Frames are only grabbed; pixels are
decoded on demand, so skipped frames never pay for decoding. No image is ever written.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from contract import StreamState
from detector.backoff import Backoff
from detector.currency import Frame, FrameMeta

logger = logging.getLogger(__name__)

DEFAULT_FPS = 25.0
"""Used when a stream does not state a usable frame rate."""
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt"})
_STOP_POLL_S = 0.05
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?P<secret>[^\r\n]*)@")
"""Userinfo runs to the last ``@`` on the line: passwords hold spaces, ``/``, ``@`` and even
``://`` unencoded, and hiding a host by mistake is cheaper than showing a password."""
_SENSITIVE_KEYS = (
    "user|username|password|passwd|passphrase|pass|pwd|pw|token|authtoken|auth|authorization"
    "|key|apikey|secret|credential|credentials|signature|sig|session|sessionid|jwt"
)
_SECRET_PARAMETER = re.compile(
    rf"(?<![A-Za-z0-9_.-])(?:[A-Za-z0-9_.-]*[_.-])?(?:{_SENSITIVE_KEYS})=(?P<secret>[^&;#\s]*)",
    re.IGNORECASE,
)
"""``key=value`` in a query string or free text; a prefix such as ``x-amz-`` or ``client_``
counts (``X-Amz-Signature``, ``client_secret``, ``stream_key``)."""

SourceKind = Literal["file", "stream", "device"]
StateListener = Callable[[StreamState, float], None]
Image = npt.NDArray[np.uint8]
T = TypeVar("T")


def scrub_credentials(text: str) -> str:
    """Hide the userinfo of every URL in ``text`` and the values of secret-looking keys.

    Camera URLs routinely embed credentials, and log lines travel far (support tickets,
    log shippers). Both patterns are matched on the original text and the union of what they
    cover is hidden, so a value that looks like the other kind (``?token=a@b``, a password
    holding ``&pw=``) is hidden whole. ``urllib.parse`` is no help here: it ends the host at
    the first ``/``, which would show half of a password holding one.
    """
    spans = sorted(
        match.span("secret")
        for pattern in (_USERINFO, _SECRET_PARAMETER)
        for match in pattern.finditer(text)
    )
    merged: list[list[int]] = []
    for start, stop in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    pieces, cursor = [], 0
    for start, stop in merged:
        pieces += [text[cursor:start], "***"]
        cursor = stop
    return "".join([*pieces, text[cursor:]])


def classify_source(uri: str) -> SourceKind:
    """A digit string is a local device index, a known scheme a live stream, else a file."""
    if uri.isdigit():
        return "device"
    scheme, separator, _ = uri.partition("://")
    if separator and scheme.lower() in LIVE_SCHEMES:
        return "stream"
    return "file"


def _describe(exc: Exception) -> str:
    """A log-safe one-liner for an open or read failure (OpenCV's text may quote the URL)."""
    if isinstance(exc, _StalledError):
        return "timed out"
    lines = str(exc).strip().splitlines()
    return scrub_credentials(lines[-1] if lines else type(exc).__name__)


class SourceError(Exception):
    """A source that cannot be used; messages never contain credentials."""


class _StalledError(Exception):
    """An OpenCV call did not return within its timeout."""


class _StoppedError(Exception):
    """``stop()`` was called while waiting for an OpenCV call."""


class _CaptureThread:
    """Runs calls one at a time on a daemon thread, so a caller can stop waiting for one.

    A call that never returns keeps only this thread busy; the queued ``close`` releases
    the capture whenever (if ever) that call returns.
    """

    _names = itertools.count(1)

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None]
        self._calls = queue.SimpleQueue()
        name = f"tally-capture-{next(self._names)}"
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def run(self, call: Callable[[], T], timeout_s: float, stop: threading.Event) -> T:
        """Result of ``call``; ``_StalledError`` after ``timeout_s``, ``_StoppedError`` on stop."""
        future: Future[T] = Future()
        self._calls.put((call, future))
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _StalledError
            try:
                return future.result(timeout=min(remaining, _STOP_POLL_S))
            except FutureTimeout:
                if stop.is_set():
                    raise _StoppedError from None

    def close(self, last_call: Callable[[], object]) -> None:
        """Run ``last_call`` after whatever is pending, then end the thread."""
        self._calls.put((last_call, Future()))
        self._calls.put(None)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            call, future = item
            try:
                future.set_result(call())
            except Exception as exc:  # handed to the waiting caller, if any
                future.set_exception(exc)


class _Connection:
    """One opened capture and the thread that alone touches it."""

    def __init__(self, uri: str, kind: SourceKind, stall_timeout_s: float) -> None:
        self._uri = uri
        self._kind = kind
        self._stall_timeout_s = stall_timeout_s
        self._thread = _CaptureThread()
        self._capture: cv2.VideoCapture | None = None

    def open(self, timeout_s: float, stop: threading.Event) -> bool:
        return self._thread.run(lambda: self._open(timeout_s), timeout_s + 1.0, stop)

    def grab(self, stop: threading.Event) -> bool:
        return self._thread.run(lambda: bool(self._live().grab()), self._stall_timeout_s, stop)

    def retrieve(self, stop: threading.Event) -> Image | None:
        ok, image = self._thread.run(self._live().retrieve, self._stall_timeout_s, stop)
        return np.asarray(image, dtype=np.uint8) if ok else None  # no copy: already uint8

    def properties(self, stop: threading.Event) -> tuple[float, int, int]:
        """Nominal fps, width and height as the container or stream states them."""
        capture = self._live()

        def read() -> tuple[float, int, int]:
            return (
                float(capture.get(cv2.CAP_PROP_FPS)),
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            )

        return self._thread.run(read, self._stall_timeout_s, stop)

    def close(self) -> None:
        self._thread.close(self._release)

    def _open(self, timeout_s: float) -> bool:
        if self._kind == "device":
            self._capture = cv2.VideoCapture(int(self._uri))
        else:
            # OpenCV's own timeouts (read: twice the watchdog) let an abandoned thread end.
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self._stall_timeout_s * 2000),
            ]
            self._capture = cv2.VideoCapture(self._uri, cv2.CAP_FFMPEG, params)
        return bool(self._capture.isOpened())

    def _live(self) -> cv2.VideoCapture:
        if self._capture is None:
            raise SourceError("capture used before it was opened")
        return self._capture

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()


class PendingFrame:
    """A grabbed, not yet decoded frame. Skipping it costs only the grab."""

    __slots__ = ("_decode", "meta")

    def __init__(self, meta: FrameMeta, decode: Callable[[], Frame]) -> None:
        self.meta = meta
        self._decode = decode

    def decode(self) -> Frame:
        """Decode the pixels; only valid before the source grabs the next frame."""
        return self._decode()

    def __repr__(self) -> str:
        return f"PendingFrame({self.meta!r})"


class VideoSource:
    """Frames of one camera as ``PendingFrame``s, surviving stream loss and hangs.

    ``FrameMeta.timestamp_s`` is seconds since the Unix epoch on the stream's clock: for
    files ``start_epoch + index / fps`` (so a replay gives the same result at any speed),
    for live sources ``clock()`` at grab. ``on_state_change(state, t)`` is called on every
    transition with ``t`` on the same clock, so gaps can be recorded as gaps.
    ``reconnects`` counts entries into ``reconnecting`` (stream losses), ``stalls`` watchdog
    firings. A file is played ``plays`` times (0: forever), its clock running on across
    replays. Iterate once; ``stop()`` may be called from any thread.
    """

    def __init__(
        self,
        uri: str,
        *,
        start_epoch: float | None = None,
        stall_timeout_s: float = 10.0,
        open_timeout_s: float = 30.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        on_state_change: StateListener | None = None,
        plays: int = 1,
    ) -> None:
        self._uri = uri
        self._name = scrub_credentials(uri)
        self._kind = classify_source(uri)
        if self._kind == "file" and not Path(uri).is_file():
            raise SourceError(f"video file not found: {self._name}")
        if stall_timeout_s <= 0 or open_timeout_s <= 0:
            raise SourceError("stall_timeout_s and open_timeout_s must be positive")
        self.is_live = self._kind != "file"
        self.fps = DEFAULT_FPS
        self.reconnects = 0
        self.stalls = 0
        self._start_epoch = start_epoch
        self._plays_left: int | None = plays if plays > 0 else None
        self._stall_timeout_s = stall_timeout_s
        self._open_timeout_s = open_timeout_s
        self._backoff = backoff or Backoff(1.0, 60.0)
        self._clock = clock
        self._on_state_change = on_state_change
        self._state: StreamState = "connecting"
        self._stop = threading.Event()
        self._grabbed = 0
        self._size = (0, 0)

    @property
    def state(self) -> StreamState:
        return self._state

    def stop(self) -> None:
        """Make iteration end soon (within one poll of a pending OpenCV call)."""
        self._stop.set()

    def __repr__(self) -> str:
        return f"VideoSource({self._name!r}, state={self._state!r})"

    def __iter__(self) -> Iterator[PendingFrame]:
        try:
            while not self._stop.is_set() and self._state != "ended":
                yield from self._session()
        except _StoppedError:
            pass
        finally:
            self._set_state("ended")

    def _session(self) -> Iterator[PendingFrame]:
        """Open once and yield frames until the stream ends, fails or stalls."""
        connection = _Connection(self._uri, self._kind, self._stall_timeout_s)
        try:
            if not self._open(connection):
                self._lose_stream("could not open the stream")
                return
            while not self._stop.is_set():
                try:
                    grabbed = connection.grab(self._stop)
                except _StalledError:
                    self.stalls += 1
                    self._set_state("stalled")
                    self._lose_stream(f"no frame within {self._stall_timeout_s:g} s")
                    return
                except cv2.error as exc:
                    self._lose_stream(_describe(exc))
                    return
                if not grabbed:
                    if not self._play_again():
                        self._lose_stream("the stream ended")
                    return
                yield self._pending(connection)
        finally:
            connection.close()

    def _open(self, connection: _Connection) -> bool:
        try:
            opened = connection.open(self._open_timeout_s, self._stop)
            fps, width, height = connection.properties(self._stop) if opened else (0.0, 0, 0)
        except (_StalledError, cv2.error) as exc:
            logger.warning("%s: open failed: %s", self._name, _describe(exc))
            opened = False
        if not opened:
            if not self.is_live:
                raise SourceError(f"cannot open video file: {self._name}")
            return False
        self.fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else DEFAULT_FPS
        self._size = (width, height)
        if self._start_epoch is None:
            self._start_epoch = self._clock()
        return True

    def _pending(self, connection: _Connection) -> PendingFrame:
        if self._state != "streaming":
            self._set_state("streaming")
            self._backoff.reset()
        index = self._grabbed
        self._grabbed += 1
        width, height = self._size
        meta = FrameMeta(
            index=index, timestamp_s=self._stream_time(index), width=width, height=height
        )
        return PendingFrame(meta, lambda: self._decode(connection, meta))

    def _decode(self, connection: _Connection, meta: FrameMeta) -> Frame:
        if meta.index != self._grabbed - 1:
            raise SourceError("decode() must be called before the next frame is grabbed")
        try:
            image = connection.retrieve(self._stop)
        except (_StalledError, _StoppedError):
            image = None
        if image is None:
            raise SourceError(f"{self._name}: frame {meta.index} could not be decoded")
        height, width = image.shape[:2]
        self._size = (width, height)
        return Frame(meta=replace(meta, width=width, height=height), image=image)

    def _lose_stream(self, reason: str) -> None:
        """Files end; live sources wait a backoff delay, then the caller reopens."""
        if not self.is_live:
            log = logger.info if self._state == "streaming" else logger.error
            log("%s: %s", self._name, reason)
            self._set_state("ended")
            return
        if self._state != "reconnecting":
            self.reconnects += 1
            self._set_state("reconnecting")
        delay = self._backoff.next_delay()
        logger.warning("%s: %s; reconnecting in %.2f s", self._name, reason, delay)
        self._stop.wait(delay)

    def _play_again(self) -> bool:
        """Files may be replayed (demos, soak tests); stream time runs on across replays."""
        if self.is_live:
            return False
        if self._plays_left is None:
            return True
        self._plays_left -= 1
        return self._plays_left > 0

    def _stream_time(self, index: int) -> float:
        if self.is_live or self._start_epoch is None:
            return self._clock()
        return self._start_epoch + index / self.fps

    def _set_state(self, state: StreamState) -> None:
        if state == self._state:
            return
        logger.info("%s: %s -> %s", self._name, self._state, state)
        self._state = state
        if self._on_state_change is not None:
            self._on_state_change(state, self._stream_time(self._grabbed))
