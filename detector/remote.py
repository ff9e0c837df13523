"""Remote configuration: a camera's set-up as the API versions it, pulled, checked and cached.

Versions are the API's, numbered per camera from 1; 0 is the site file's set-up (the file's
``config_version`` is a revision of the whole file and never compared with them). The worker
pulls once when it starts (``CameraWorker``), and the API says in each heartbeat answer which
version is the newest. A newer one than the worker counts with (and not the one it last
refused) is pulled, validated as a
``CameraSetup`` and checked against the stream it would count; then the camera thread switches
to it between two frames (``CameraPipeline.reconfigure``), without a restart. A configuration
that does not validate or does not fit is refused with its reason, which the next heartbeat
carries back (``ConfigPull``), and counting goes on with the last good one.

The last applied configuration is cached beside the outbox (set-up only, never imagery), so a
worker that restarts while the API is unreachable counts with it instead of its site file's;
at start the newer of the cached one and the API's wins (the cached one on a tie), and the
site file's only when there is neither. A version the API announces but does not hand out
(none stored) is asked for again only after a growing pause, or once another is announced.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract import ConfigPull, VehicleClass
from contract.camera import CameraSetup
from contract.report import MAX_CONFIG_VERSION, Label
from contract.site import Camera, format_validation_error
from detector.backoff import Backoff

log = logging.getLogger(__name__)

CACHE_SUFFIX = ".config.json"
ASPECT_TOLERANCE = 0.02
"""Relative difference of aspect ratios still read as the same shape (rounded frame sizes)."""
_REASON_CHARS = 500
SITE_FILE_VERSION = 0
"""The version a worker counting with its site file's set-up reports: none the API gave."""

Fetch = Callable[[], object | None]
"""Gets the API's configuration document, or None when there is none to judge now."""


class VersionedSetup(BaseModel):
    """A set-up with the version the API gave it; also the cache file's format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=0, le=MAX_CONFIG_VERSION)
    setup: CameraSetup


class _DeviceConfig(VersionedSetup):
    """The answer of ``GET /api/v1/device/config``; fields a newer API adds are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    camera_id: Label


@dataclass(frozen=True, slots=True)
class Switch:
    """A checked configuration waiting for the camera thread to count with it."""

    camera: Camera
    version: int


def cache_path(outbox: Path, camera_id: str) -> Path:
    """``<outbox dir>/<camera>.config.json``: the cache lives and goes with the outbox."""
    return outbox.parent / f"{camera_id}{CACHE_SUFFIX}"


class ConfigCache:
    """The last applied remote configuration of one camera, on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> VersionedSetup | None:
        """The cached configuration; None if there is none or it cannot be used (logged)."""
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cached configuration %s unreadable (%s); not used", self.path, exc)
            return None
        try:
            return VersionedSetup.model_validate_json(text)
        except ValidationError as exc:
            log.warning(
                "cached configuration %s is not valid; not used: %s", self.path, _problems(exc)
            )
            return None

    def store(self, cached: VersionedSetup) -> None:
        """Replace the cache atomically (temporary file, fsync, rename): a crash leaves the old
        file or the new one, never half of one."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as file:
            file.write(cached.model_dump_json())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)


class RemoteConfig:
    """One camera's configuration: the one in use, the next one to switch to, the last pull.

    ``wants`` and ``pull`` run on the uplink thread (and ``pull`` once on the camera thread
    at start), ``take`` and ``applied`` on the camera thread, the heartbeat reads
    ``version`` and ``last_pull``: all of it behind one lock.
    """

    def __init__(
        self,
        camera: Camera,
        version: int,
        cache: ConfigCache,
        detected: tuple[VehicleClass, ...],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        backoff: Backoff | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._camera = camera
        self._version = version
        self._last_pull: ConfigPull | None = None
        self._cache = cache
        self._detected = detected
        self._clock = clock
        self._lock = threading.Lock()
        self._next: Switch | None = None
        self._refused: int | None = None
        self._missing: int | None = None
        """An announced version the API had nothing for, asked again after ``_retry_at``."""
        self._retry_at = float("-inf")
        self._backoff = backoff or Backoff(30.0, 3600.0)
        self._monotonic = monotonic

    @property
    def camera(self) -> Camera:
        """The camera as it counts now (the site file's, or with an API set-up)."""
        with self._lock:
            return self._camera

    @property
    def version(self) -> int:
        """The API version it counts with; ``SITE_FILE_VERSION`` for the site file's."""
        with self._lock:
            return self._version

    @property
    def last_pull(self) -> ConfigPull | None:
        """What became of the last pull, for the heartbeat."""
        with self._lock:
            return self._last_pull

    @classmethod
    def start(
        cls, camera: Camera, cache: ConfigCache, detected: tuple[VehicleClass, ...]
    ) -> RemoteConfig:
        """Count with the cached configuration (the last the API gave and this worker
        applied), else with the site file's; the worker's pull at start may then find a newer
        one."""
        cached = cache.load()
        if cached is None:
            return cls(camera, SITE_FILE_VERSION, cache, detected)
        try:
            from_cache = camera.with_setup(cached.setup)
        except ValidationError as exc:
            log.warning(
                "camera %s: cached configuration version %d does not fit the site file; using"
                " the file's set-up: %s",
                camera.id,
                cached.version,
                _problems(exc),
            )
            return cls(camera, SITE_FILE_VERSION, cache, detected)
        log.info(
            "camera %s: counting with cached configuration version %d, not the site file's",
            camera.id,
            cached.version,
        )
        return cls(from_cache, cached.version, cache, detected)

    def wants(self, newest: int | None) -> bool:
        """Whether the API's newest version is worth pulling: newer than the one counting or
        queued, not refused, and not one the API just had nothing for (until its pause)."""
        with self._lock:
            known = self._next.version if self._next else self._version
            waiting = newest == self._missing and self._monotonic() < self._retry_at
            refused = newest == self._refused
        return newest is not None and newest > known and not refused and not waiting

    def pull(self, fetch: Fetch, newest: int | None, frame_size: tuple[int, int] | None) -> bool:
        """Pull, check and queue the API's configuration (``newest``: the version announced,
        None at start); True when there is an outcome to report soon (queued for the camera
        thread, or refused)."""
        if frame_size is None:
            return False  # whether it fits the stream can only be judged from a frame
        body = fetch()
        if body is None:
            self._wait_for(newest)
            return False
        with self._lock:
            self._missing = None
        self._backoff.reset()
        try:
            pulled = _DeviceConfig.model_validate(body)
        except ValidationError as exc:
            return self._refuse(newest or SITE_FILE_VERSION, _problems(exc))
        if pulled.version <= self.version:
            log.info(
                "camera %s: the API's configuration %d is not newer", self.camera.id, pulled.version
            )
            return False
        problem = self._problem(pulled, frame_size)
        if problem:
            return self._refuse(pulled.version, problem)
        try:
            camera = self.camera.with_setup(pulled.setup)
        except ValidationError as exc:
            return self._refuse(pulled.version, _problems(exc))
        with self._lock:
            self._next = Switch(camera, pulled.version)
        return True

    def _wait_for(self, announced: int | None) -> None:
        """Nothing to pull (none stored, or no answer): ask for the same version again only
        after a growing pause, so a camera without a stored configuration is no 404 loop."""
        delay = self._backoff.next_delay()
        with self._lock:
            self._missing, self._retry_at = announced, self._monotonic() + delay

    def take(self) -> Switch | None:
        """The configuration to switch to before the next frame, once."""
        with self._lock:
            switch, self._next = self._next, None
        return switch

    def applied(self, switch: Switch) -> None:
        """The camera counts with ``switch`` now: remember it, report it, cache it."""
        with self._lock:
            self._camera, self._version = switch.camera, switch.version
            self._last_pull = ConfigPull(version=switch.version, status="applied", at=self._clock())
        log.info("camera %s: configuration version %d applied", switch.camera.id, switch.version)
        cached = VersionedSetup(version=switch.version, setup=switch.camera.setup())
        try:
            self._cache.store(cached)
        except OSError as exc:
            log.error(
                "camera %s: configuration version %d applied but not cached (%s); a restart"
                " without the API would count with the site file's",
                switch.camera.id,
                switch.version,
                exc,
            )

    def _problem(self, pulled: _DeviceConfig, frame_size: tuple[int, int]) -> str | None:
        """Why a valid configuration cannot count on this worker's stream, or None."""
        if pulled.camera_id != self.camera.id:
            return f"the configuration is for camera {pulled.camera_id}, not {self.camera.id}"
        undetected = sorted(set(pulled.setup.counted_classes()) - set(self._detected))
        if pulled.setup.classes is not None and undetected:
            return f"classes {', '.join(undetected)} are not detected by this worker's model"
        return stream_problem(pulled.setup, frame_size)

    def _refuse(self, version: int, reason: str) -> bool:
        reason = _one_line(reason)[:_REASON_CHARS] or "refused"
        pull = ConfigPull(version=version, status="refused", reason=reason, at=self._clock())
        with self._lock:
            self._refused, self._last_pull, counting = version, pull, self._version
        log.warning(
            "camera %s: configuration version %d refused, counting on with version %d: %s",
            self.camera.id,
            version,
            counting,
            reason,
        )
        return True


def stream_problem(setup: CameraSetup, frame_size: tuple[int, int]) -> str | None:
    """Pixel coordinates fit only frames of their reference's shape (they are scaled per axis,
    so another aspect ratio would move every line); relative ones fit any frame."""
    if setup.reference_resolution is None:
        return None
    (ref_w, ref_h), (width, height) = setup.reference_resolution, frame_size
    if abs(ref_w * height - ref_h * width) <= ASPECT_TOLERANCE * ref_h * width:
        return None  # the ratios agree (cross-multiplied: a zero side cannot divide)
    return (
        f"reference_resolution {ref_w}x{ref_h} has another aspect ratio than the stream's"
        f" {width}x{height} frames, so its pixel coordinates would land elsewhere; give"
        " coordinates for the stream's shape or relative (0-1) ones"
    )


def _problems(exc: ValidationError) -> str:
    """Every validation problem, located, on one line."""
    return "; ".join(line.strip() for line in format_validation_error(exc).splitlines())


def _one_line(text: str) -> str:
    """Printable ASCII on one line, as the contract's reasons must be."""
    return " ".join("".join(c if " " <= c <= "~" else " " for c in text).split())
