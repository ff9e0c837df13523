"""Remote configuration: a camera's set-up as the API versions it, pulled, checked and cached.

The API says in each heartbeat answer which configuration version is the newest. A newer one
than the worker counts with (and not the one it last refused) is pulled, validated as a
``CameraSetup`` and checked against the stream it would count; then the camera thread switches
to it between two frames (``CameraPipeline.reconfigure``), without a restart. A configuration
that does not validate or does not fit is refused with its reason, which the next heartbeat
carries back (``ConfigPull``), and counting goes on with the last good one.

The last applied configuration is cached beside the outbox (set-up only, never imagery), so a
worker that restarts while the API is unreachable counts with it instead of its site file's.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract import ConfigPull, VehicleClass
from contract.camera import CameraSetup
from contract.report import MAX_CONFIG_VERSION, Label
from contract.site import Camera, format_validation_error

log = logging.getLogger(__name__)

CACHE_SUFFIX = ".config.json"
ASPECT_TOLERANCE = 0.02
"""Relative difference of aspect ratios still read as the same shape (rounded frame sizes)."""
_REASON_CHARS = 500

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

    ``pull`` runs on the uplink thread; ``take`` and ``applied`` on the camera thread.
    """

    def __init__(
        self,
        camera: Camera,
        version: int,
        cache: ConfigCache,
        detected: tuple[VehicleClass, ...],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.camera = camera
        self.version = version
        self.last_pull: ConfigPull | None = None
        self._cache = cache
        self._detected = detected
        self._clock = clock
        self._lock = threading.Lock()
        self._next: Switch | None = None
        self._refused: int | None = None

    @classmethod
    def start(
        cls,
        camera: Camera,
        file_version: int,
        cache: ConfigCache,
        detected: tuple[VehicleClass, ...],
    ) -> RemoteConfig:
        """Count with the cached configuration if it is newer than the site file's."""
        cached = cache.load()
        if cached is None or cached.version <= file_version:
            return cls(camera, file_version, cache, detected)
        try:
            from_cache = camera.with_setup(cached.setup)
        except ValidationError as exc:
            log.warning(
                "camera %s: cached configuration version %d does not fit the site file; using"
                " the file's version %d: %s",
                camera.id,
                cached.version,
                file_version,
                _problems(exc),
            )
            return cls(camera, file_version, cache, detected)
        log.info(
            "camera %s: counting with cached configuration version %d (the site file has %d)",
            camera.id,
            cached.version,
            file_version,
        )
        return cls(from_cache, cached.version, cache, detected)

    def wants(self, newest: int | None) -> bool:
        """Whether the API's newest version is worth pulling."""
        with self._lock:
            known = self._next.version if self._next else self.version
        return newest is not None and newest > known and newest != self._refused

    def pull(self, fetch: Fetch, newest: int, frame_size: tuple[int, int] | None) -> bool:
        """Pull, check and queue the API's configuration; True when there is an outcome to
        report soon (queued for the camera thread, or refused)."""
        if frame_size is None:
            return False  # whether it fits the stream can only be judged from a frame
        body = fetch()
        if body is None:
            return False
        try:
            pulled = _DeviceConfig.model_validate(body)
        except ValidationError as exc:
            return self._refuse(newest, _problems(exc))
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

    def take(self) -> Switch | None:
        """The configuration to switch to before the next frame, once."""
        with self._lock:
            switch, self._next = self._next, None
        return switch

    def applied(self, switch: Switch) -> None:
        """The camera counts with ``switch`` now: remember it, report it, cache it."""
        with self._lock:
            self.camera, self.version = switch.camera, switch.version
        self.last_pull = ConfigPull(version=switch.version, status="applied", at=self._clock())
        log.info("camera %s: configuration version %d applied", self.camera.id, switch.version)
        cached = VersionedSetup(version=switch.version, setup=switch.camera.setup())
        try:
            self._cache.store(cached)
        except OSError as exc:
            log.error(
                "camera %s: configuration version %d applied but not cached (%s); a restart"
                " without the API would count with the site file's",
                self.camera.id,
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
        self._refused = version
        self.last_pull = ConfigPull(
            version=version, status="refused", reason=reason, at=self._clock()
        )
        log.warning(
            "camera %s: configuration version %d refused, counting on with version %d: %s",
            self.camera.id,
            version,
            self.version,
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
