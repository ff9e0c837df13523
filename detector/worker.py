"""The long-lived worker: every camera of a site config, reporting to the central API.

One thread per camera runs source -> pipeline -> outbox; one uplink thread per camera
delivers that camera's outbox with its own device token. The model is loaded once and
shared; the cameras' inferences run in parallel, up to one per core. SIGINT/SIGTERM stop
the sources, close the open intervals as partial reports and give the uplinks a moment to
deliver; whatever is not delivered stays in the outbox for the next start.

The uplink thread also acts on what the API's heartbeat answers ask for: it pulls a newer
configuration (``detector.remote``) and posts a requested scene map
(``detector.scene_request``); the camera thread switches configuration and opens or closes
the learning window between two frames, so the pipeline stays single-threaded.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import httpx

from contract import Heartbeat, IntervalReport, Software, StreamHealth
from contract.report import MAX_COUNT, MAX_FRAME_SIDE
from contract.site import Camera, SiteConfig
from detector.aggregate import HealthCounters
from detector.config import resolve_model_path
from detector.detect import VehicleDetector
from detector.engine import CameraPipeline
from detector.outbox import Outbox, OutboxError, outbox_path
from detector.remote import ConfigCache, Fetch, RemoteConfig, cache_path
from detector.scene import SceneLearner
from detector.scene_request import SceneRequest
from detector.software import describe_software
from detector.source import VideoSource, scrub_credentials
from detector.uplink import HeartbeatReply, ReportUplink

log = logging.getLogger(__name__)

DRAIN_SECONDS = 10.0
"""How long a stopping worker keeps delivering before it leaves the rest in the outbox."""


@dataclass(slots=True)
class CameraWorker:
    """One camera: its source, pipeline, outbox, remote configuration and scene-map request.

    ``camera`` is the site file's; ``remote.camera`` the one counting now (it may be a
    configuration pulled from the API, or cached beside the outbox by an earlier run).
    """

    camera: Camera
    config: SiteConfig
    detector: VehicleDetector
    outbox: Outbox
    source: VideoSource
    software: Software | None = None
    started_at: float = field(default_factory=time.monotonic)
    pipeline: CameraPipeline | None = None
    unstored_reports: int = 0
    unstored_reported: int = 0
    skipped_reports: int = 0
    frame_size: tuple[int, int] | None = None
    """Width and height of the stream's frames, once it delivers one (for the heartbeat)."""
    fetch_at_start: Fetch | None = None
    """Pulls the API's configuration once, at the first frame (None: no API configured)."""
    remote: RemoteConfig = field(init=False)
    scene: SceneRequest = field(init=False)

    def __post_init__(self) -> None:
        cache = ConfigCache(cache_path(self.outbox.path, self.camera.id))
        self.remote = RemoteConfig.start(self.camera, cache, self.config.model.classes)
        learner = SceneLearner(self.config.scene)
        self.scene = SceneRequest(learner, self.camera.id, self.config.scene.learning_s)

    def run(self) -> None:
        """Process the stream until it ends or the source is stopped, then flush."""
        log.info("camera %s: reading %s", self.camera.id, scrub_credentials(self.camera.source))
        for pending in self.source:
            width, height = pending.meta.width, pending.meta.height
            if 0 < width <= MAX_FRAME_SIDE and 0 < height <= MAX_FRAME_SIDE:
                self.frame_size = (width, height)
            if self.pipeline is None:
                self.pull_at_start()
            pipeline = self.pipeline or self._start_pipeline()
            self._between_frames(pipeline)
            self.store(pipeline.process(pending))
        if self.pipeline is not None:
            self.store(self.pipeline.finish())
        log.info("camera %s: stream %s", self.camera.id, self.source.state)

    def pull_at_start(self) -> None:
        """Before counting anything: the API's newest configuration, when it is newer than the
        cached one (a tie keeps the cache, and the site file counts only without either), so
        a restart never counts with an older set-up than the API holds."""
        if self.fetch_at_start is None or not self.remote.pull(
            self.fetch_at_start, None, self.frame_size
        ):
            return
        switch = self.remote.take()
        if switch is not None:
            self.remote.applied(switch)

    def _start_pipeline(self) -> CameraPipeline:
        self.pipeline = CameraPipeline(
            self.remote.camera,
            self.detector,
            self.source.fps,
            self.health,
            config_version=self.remote.version,
            observers=[self.scene],
        )
        return self.pipeline

    def _between_frames(self, pipeline: CameraPipeline) -> None:
        """Switch to a pulled configuration (the interval in progress closes as partial) and
        open or close a scene-map window; here, so the pipeline stays on one thread."""
        switch = self.remote.take()
        if switch is not None:
            self.store(pipeline.reconfigure(switch.camera, switch.version))
            self.scene.restart_window()
            self.remote.applied(switch)
        self.scene.between_frames(pipeline.config_version)

    def replied(self, uplink: ReportUplink, reply: HeartbeatReply) -> bool:
        """Act on a heartbeat's answer (uplink thread): follow the scene-map request and post
        a finished map (after: this answer predates the post), pull a newer configuration.
        True: the API should hear back soon."""
        self.scene.wanted(reply.scene_map_wanted)
        scene_map = self.scene.due()
        if scene_map is not None:
            self.scene.settle(uplink.send_scene_map(scene_map))
        if reply.config_version is None or not self.remote.wants(reply.config_version):
            return False
        return self.remote.pull(uplink.fetch_config, reply.config_version, self.frame_size)

    def store(self, reports: list[IntervalReport]) -> None:
        """Queue reports durably. A full disk is logged and counted, never a crash loop.

        A report that starts before the end of the latest one queued covers time an earlier
        run reported, maybe in intervals of another length (a restart right after a
        configuration switch): it is skipped, as the API would refuse the overlap."""
        for report in reports:
            try:
                overlaps = report.interval_start.timestamp() < self.outbox.reported_until()
                if overlaps or not self.outbox.put(report):
                    self.skipped_reports += 1
                    log.info(
                        "camera %s: interval %s already reported by an earlier run; kept that one",
                        self.camera.id,
                        report.interval_start.isoformat(),
                    )
            except OutboxError as exc:
                self.unstored_reports += 1
                log.error(
                    "camera %s: report lost, outbox unusable (%s); %d lost so far",
                    self.camera.id,
                    exc,
                    self.unstored_reports,
                )

    def health(self) -> HealthCounters:
        """Counters for the next report; outbox problems must not stop counting."""
        try:
            dropped, backlog = self.outbox.take_dropped(), self.outbox.backlog()
        except OutboxError:
            dropped, backlog = 0, 0
        unstored = self.unstored_reports - self.unstored_reported
        self.unstored_reported = self.unstored_reports
        return HealthCounters(
            reconnects=self.source.reconnects,
            stalls=self.source.stalls,
            dropped_reports=dropped + unstored,  # both: since the previous report
            outbox_backlog=backlog,
        )

    def heartbeat(self) -> Heartbeat:
        """Liveness for the API; no traffic data. Counts past the contract's bound read as
        the bound (a large outbox must not make the heartbeat itself invalid)."""
        fps = (
            self.pipeline.frames_analysed / max(time.monotonic() - self.started_at, 1e-6)
            if self.pipeline
            else 0.0
        )
        try:
            backlog, dropped = self.outbox.backlog(), self.outbox.dropped_total()
            dead_lettered = self.outbox.dead_lettered()
        except OutboxError:
            backlog, dropped, dead_lettered = 0, 0, 0
        return Heartbeat(
            camera_id=self.camera.id,
            sent_at=datetime.now(UTC),
            uptime_s=time.monotonic() - self.started_at,
            outbox_backlog=min(backlog, MAX_COUNT),
            dropped_reports=min(dropped + self.unstored_reports, MAX_COUNT),
            dead_lettered_reports=min(dead_lettered, MAX_COUNT),
            streams=[
                StreamHealth(
                    camera_id=self.camera.id,
                    state=self.source.state,
                    reconnects=self.source.reconnects,
                    fps=round(min(fps, 1000.0), 2),
                    frame_width=self.frame_size[0] if self.frame_size else None,
                    frame_height=self.frame_size[1] if self.frame_size else None,
                    source_fps=self.source.fps if self.frame_size else None,
                )
            ],
            config_version=self.remote.version,
            config_pull=self.remote.last_pull,
            software=self.software,
        )


def build_uplink(
    config: SiteConfig, camera: Camera, outbox: Outbox, transport: httpx.BaseTransport | None
) -> ReportUplink:
    """The camera's own token file wins; otherwise $TALLY_DEVICE_TOKEN or uplink.token_file."""
    if camera.token_file is not None:
        uplink_config = config.uplink.model_copy(update={"token_file": camera.token_file})
        return ReportUplink.from_config(uplink_config, outbox, environ={}, transport=transport)
    return ReportUplink.from_config(config.uplink, outbox, environ=os.environ, transport=transport)


def run_worker(
    config: SiteConfig,
    *,
    api_url: str | None = None,
    model_path: str | None = None,
    stop: threading.Event | None = None,
    transport: httpx.BaseTransport | None = None,
    start_epoch: float | None = None,
) -> int:
    """Run every camera until its stream ends (files) or the worker is told to stop.

    ``start_epoch`` places a replayed file on the clock (default: now); ``transport`` is the
    HTTP seam (tests capture every byte sent through it).
    """
    if api_url:
        config = config.model_copy(
            update={"uplink": config.uplink.model_copy(update={"api_url": api_url})}
        )
    stop = stop or threading.Event()
    detector = VehicleDetector(
        config.model,
        resolve_model_path(model_path, config.model.path),
        concurrency=len(config.cameras),
    )
    software = describe_software(detector.model_path)
    log.info("software %s, code sha256 %s", software.version, software.code_sha256)
    workers = [
        CameraWorker(
            camera,
            config,
            detector,
            Outbox(
                outbox_path(config.outbox.path, camera.id, len(config.cameras)),
                config.outbox.max_reports,
            ),
            VideoSource(camera.source, start_epoch=start_epoch, plays=camera.plays),
            software,
        )
        for camera in config.cameras
    ]
    uplinks = (
        [build_uplink(config, w.camera, w.outbox, transport) for w in workers]
        if config.uplink.api_url
        else []
    )
    for uplink, worker in zip(uplinks, workers, strict=False):
        worker.fetch_at_start = uplink.fetch_config
    if not uplinks:
        log.warning("no uplink.api_url: reports stay in the outbox until one is configured")
    _stop_on_signals(stop, workers)
    delivery_stop = threading.Event()
    threads = [threading.Thread(target=w.run, name=f"camera-{w.camera.id}") for w in workers]
    threads += [
        threading.Thread(
            target=u.run_forever,
            args=(delivery_stop, w.heartbeat, partial(w.replied, u)),
            name=f"uplink-{w.camera.id}",
            daemon=True,
        )
        for u, w in zip(uplinks, workers, strict=False)
    ]
    for thread in threads:
        thread.start()
    for thread in threads[: len(workers)]:
        thread.join()
    _drain(workers, uplinks)
    delivery_stop.set()
    for thread in threads[len(workers) :]:
        thread.join(config.uplink.timeout_s)  # a request in flight finishes: final byte counts
    for uplink, worker in zip(uplinks, workers, strict=False):
        wire = uplink.wire_bytes
        log.info(
            "camera %s: uplink sent %d body bytes in %d requests; the API stored %d"
            " (reports %d, heartbeats %d)",
            worker.camera.id,
            wire.sent,
            wire.requests,
            wire.accepted,
            wire.accepted_reports,
            wire.accepted_heartbeats,
        )
        uplink.close()
    return 0


def _drain(workers: list[CameraWorker], uplinks: list[ReportUplink]) -> None:
    """Give the uplinks a bounded moment to deliver what the streams produced last."""
    deadline = time.monotonic() + (DRAIN_SECONDS if uplinks else 0)
    while time.monotonic() < deadline and any(w.outbox.backlog() for w in workers):
        time.sleep(0.2)
    for worker in workers:
        backlog = worker.outbox.backlog()
        if backlog:
            log.warning(
                "camera %s: %d report(s) left in the outbox for the next start",
                worker.camera.id,
                backlog,
            )


def _stop_on_signals(stop: threading.Event, workers: list[CameraWorker]) -> None:
    """SIGINT/SIGTERM: stop reading; the camera threads then flush and the worker exits."""

    def watch() -> None:
        stop.wait()
        for worker in workers:
            worker.source.stop()

    threading.Thread(target=watch, name="stop-watch", daemon=True).start()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
